<?php
// Publishes one update with Symfony's Mercure component, as a Symfony
// application would: Hub + StaticTokenProvider + Update. Used by
// compat-symfony.test.mjs; Debian packages: php-cli php-symfony-mercure.
//
//   MERCURE_JWT=<token> php publish.php <hub URL> '<update JSON>'
//     update JSON: {"topics": [...], "data": "...", "private": bool,
//                   "id": string|null, "type": string|null, "retry": int|null}
//     prints the id returned by Hub::publish() and a newline.
//   php publish.php --check
//     loads the component and prints what was loaded.
//
// The autoloader is Debian's (/usr/share/php); SYMFONY_MERCURE_AUTOLOAD may
// point at another one (e.g. a Composer vendor/autoload.php).

declare(strict_types=1);

use Symfony\Component\HttpClient\HttpClient;
use Symfony\Component\Mercure\Hub;
use Symfony\Component\Mercure\Jwt\StaticTokenProvider;
use Symfony\Component\Mercure\Update;

function fail(string $message, int $code = 1): void
{
    fwrite(STDERR, $message . "\n");
    exit($code);
}

$autoload = getenv('SYMFONY_MERCURE_AUTOLOAD') ?: '/usr/share/php/Symfony/Component/Mercure/autoload.php';
if (!is_file($autoload)) {
    fail("the Symfony Mercure autoloader is missing at $autoload (Debian package php-symfony-mercure)", 2);
}
// Debian's autoloaders require their dependencies relative to /usr/share/php.
set_include_path(get_include_path() . PATH_SEPARATOR . '/usr/share/php');
require_once $autoload;
foreach ([Hub::class, StaticTokenProvider::class, Update::class, HttpClient::class] as $class) {
    if (!class_exists($class)) {
        fail("the class $class cannot be loaded through $autoload (Debian packages php-symfony-mercure, php-symfony-http-client)", 2);
    }
}

if (($argv[1] ?? '') === '--check') {
    $file = (new ReflectionClass(Hub::class))->getFileName();
    $client = get_class(HttpClient::create());
    echo 'PHP ' . PHP_VERSION . ", $file, HTTP client $client\n";
    exit(0);
}

if ($argc !== 3) {
    fail("usage: MERCURE_JWT=<token> php publish.php <hub URL> '<update JSON>'", 64);
}
$token = getenv('MERCURE_JWT');
if (!is_string($token) || $token === '') {
    fail('MERCURE_JWT (the publisher token) is not set', 64);
}
try {
    $fields = json_decode($argv[2], true, 16, JSON_THROW_ON_ERROR);
} catch (JsonException $e) {
    fail('the update is not valid JSON: ' . $e->getMessage(), 64);
}

$hub = new Hub($argv[1], new StaticTokenProvider($token));
$update = new Update(
    $fields['topics'],
    $fields['data'] ?? '',
    $fields['private'] ?? false,
    $fields['id'] ?? null,
    $fields['type'] ?? null,
    $fields['retry'] ?? null,
);

try {
    $id = $hub->publish($update);
} catch (Throwable $e) {
    // Say what the hub answered: the component wraps the HTTP client's exception.
    $message = get_class($e) . ': ' . $e->getMessage();
    for ($cause = $e->getPrevious(); $cause !== null; $cause = $cause->getPrevious()) {
        $message .= "\n  caused by " . get_class($cause) . ': ' . $cause->getMessage();
        if (method_exists($cause, 'getResponse')) {
            $response = $cause->getResponse();
            $headers = $response->getHeaders(false);
            $message .= "\n  the hub answered " . $response->getStatusCode()
                . (isset($headers['www-authenticate']) ? ', WWW-Authenticate: ' . implode(', ', $headers['www-authenticate']) : '')
                . ': ' . trim($response->getContent(false));
        }
    }
    fail($message);
}
echo $id, "\n";
