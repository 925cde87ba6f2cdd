//! The character rules shared by topics, matchers, ids and types.

use unicode_general_category::{GeneralCategory, get_general_category};

use crate::HubError;

/// Checks the protocol's character constraint: no C0 or C1 control
/// characters, no DEL and no Unicode format characters (category `Cf`).
pub fn check_characters(field: &str, value: &str) -> Result<(), HubError> {
    // Every publish checks its topics: an ASCII value (the usual case) has no
    // format character, so only its control bytes need looking at.
    // (A fold rather than `all`, so that it runs without a branch per byte.)
    let outside = value
        .bytes()
        .fold(false, |outside, b| outside | !(b' '..=b'~').contains(&b));
    if !outside {
        return Ok(());
    }
    for (index, c) in value.chars().enumerate() {
        let what = if c <= '\u{1F}' || ('\u{7F}'..='\u{9F}').contains(&c) {
            "the control character"
        } else if get_general_category(c) == GeneralCategory::Format {
            "the format character"
        } else {
            continue;
        };
        return Err(HubError::ForbiddenCharacter {
            field: field.to_owned(),
            what: format!("{what} U+{:04X}", u32::from(c)),
            position: index + 1,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_iris_pass() {
        check_characters("topic", "https://example.com/books/1?x=é").unwrap();
    }

    #[test]
    fn controls_del_c1_and_format_characters_are_refused() {
        for (value, code) in [
            ("a\nb", "U+000A"),
            ("a\0", "U+0000"),
            ("a\u{7F}", "U+007F"),
            ("a\u{85}", "U+0085"),
            ("a\u{200B}", "U+200B"),
            ("a\u{202E}", "U+202E"),
            ("\u{FEFF}a", "U+FEFF"),
        ] {
            let error = check_characters("topic", value).unwrap_err();
            assert!(
                error.to_string().contains(code),
                "{error} should name {code}"
            );
        }
    }

    #[test]
    fn error_names_field_and_position() {
        let error = check_characters("id", "ab\tc").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`id` contains the control character U+0009 at character 3, which is not allowed"
        );
    }
}
