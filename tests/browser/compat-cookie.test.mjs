// Compatibility mode in a real browser: Chromium's own EventSource subscribes
// with legacy `topic=` selectors and is authorized by the legacy
// `mercureAuthorization` cookie holding a legacy subscriber token.
//
// The private update follows the old specification's own example: its
// canonical topic is the book, its alternate topic names the user, and the
// user's token allows `https://example.com/users/{user}/{?topic}` for that
// user only. A page whose cookie is another user's, a page without a cookie,
// and a page with foo's cookie but bar's token in the `authorization` query
// parameter (which wins over the cookie) subscribe to the same selectors and
// must not receive it.
//
// Run: cargo build --workspace --bins && cd tests/browser && npm ci && npm test

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  LEGACY_COOKIE_NAME,
  launchChromium,
  legacySubscribeUrl,
  logsOnFailure,
  mintLegacyToken,
  openEventSource,
  openHubPage,
  publish,
  record,
  startCompatHub,
  waitForRecord,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 60_000;

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

describe('a hub in compatibility mode with the default legacy cookie name', () => {
  let hub;
  before(async () => {
    // No cookie_name: the compatibility mode's default, mercureAuthorization.
    hub = await startCompatHub({
      config: `
[subscribers]
anonymous = true
`,
    });
  });
  after(async () => {
    await hub?.stop();
  });

  test('a private update reaches only the page whose mercureAuthorization cookie allows it', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    logsOnFailure(t, hub);
    const book = 'https://example.com/books/1';
    const forFoo = `https://example.com/users/foo/?topic=${encodeURIComponent(book)}`;
    const userToken = (user) =>
      mintLegacyToken(
        hub.legacy.subscriberSecret,
        { subscribe: [`https://example.com/users/${user}/{?topic}`], payload: { user } },
        { expiresIn: 3600 },
      );

    const contexts = {
      foo: await browser.newContext(),
      bar: await browser.newContext(),
      none: await browser.newContext(),
      fooCookieBarQuery: await browser.newContext(),
    };
    try {
      // The attributes Symfony's Authorization::createCookie() gives it: the
      // hub's host and path, HttpOnly, SameSite=Strict, an expiry, and not
      // Secure since the hub URL is plain HTTP.
      const hubUrl = new URL(hub.url);
      const cookie = (value) => ({
        name: LEGACY_COOKIE_NAME,
        value,
        domain: hubUrl.hostname,
        path: hubUrl.pathname,
        expires: Math.floor(Date.now() / 1000) + 3600,
        httpOnly: true,
        secure: false,
        sameSite: 'Strict',
      });
      await contexts.foo.addCookies([cookie(userToken('foo'))]);
      await contexts.bar.addCookies([cookie(userToken('bar'))]);
      await contexts.fooCookieBarQuery.addCookies([cookie(userToken('foo'))]);
      assert.deepEqual(
        (await contexts.foo.cookies(hub.url)).map((c) => [c.name, c.path]),
        [[LEGACY_COOKIE_NAME, hubUrl.pathname]],
      );
      assert.deepEqual(await contexts.none.cookies(hub.url), []);

      // What each page's EventSource request carried and what the hub answered.
      const requests = { foo: [], bar: [], none: [], fooCookieBarQuery: [] };
      const pages = {};
      for (const [user, context] of Object.entries(contexts)) {
        const page = await openHubPage(context, hub);
        page.on('response', async (response) => {
          if (!response.url().startsWith(hub.url)) return;
          const sent = await response.request().allHeaders().catch(() => ({}));
          requests[user].push({
            cookie: (sent.cookie ?? '').split('=')[0] || null,
            status: response.status(),
            contentType: response.headers()['content-type'] ?? null,
          });
        });
        pages[user] = page;
      }

      // Two topic selectors, one of them a URI template.
      const selectors = ['https://example.com/books/{id}', 'https://example.com/authors/1'];
      for (const [user, page] of Object.entries(pages)) {
        const params = user === 'fooCookieBarQuery' ? { authorization: userToken('bar') } : {};
        await openEventSource(page, 'books', legacySubscribeUrl(hub, selectors, params), { withCredentials: true });
      }
      for (const [user, page] of Object.entries(pages)) {
        try {
          await waitForRecord(page, 'books', 'r.opens >= 1', `the ${user} page's EventSource to open`);
        } catch (error) {
          error.message += `\nits requests to the hub: ${JSON.stringify(requests[user])}`;
          throw error;
        }
      }
      assert.deepEqual(
        Object.fromEntries(Object.entries(requests).map(([user, r]) => [user, r[0]?.cookie ?? null])),
        { foo: LEGACY_COOKIE_NAME, bar: LEGACY_COOKIE_NAME, none: null, fooCookieBarQuery: LEGACY_COOKIE_NAME },
        'the browser sent the cookie from the pages that have one',
      );

      // Published by a legacy publisher: canonical topic the book, alternate
      // topic foo's; then a public marker. Updates arrive in order, so once
      // the marker is there a private update due to a page would be too.
      const privateId = await publish(
        hub,
        { topic: [book, forFoo], data: 'for foo only', private: 'on' },
        hub.legacy.publisherToken,
      );
      const markerId = await publish(hub, { topic: book, data: 'for everyone' }, hub.legacy.publisherToken);

      const privateMessage = { type: 'message', data: 'for foo only', lastEventId: privateId };
      const marker = { type: 'message', data: 'for everyone', lastEventId: markerId };
      const wanted = { foo: [privateMessage, marker], bar: [marker], none: [marker], fooCookieBarQuery: [marker] };
      for (const [user, page] of Object.entries(pages)) {
        await waitForRecord(page, 'books', `r.messages.length >= ${wanted[user].length}`, `the updates on the ${user} page`);
      }
      for (const [user, page] of Object.entries(pages)) {
        const seen = await record(page, 'books');
        assert.deepEqual(seen.messages, wanted[user], `the ${user} page got exactly what it may see`);
        assert.equal(seen.errors, 0, `the ${user} page's connection never failed`);
      }
    } finally {
      for (const context of Object.values(contexts)) await context.close();
    }
  });
});
