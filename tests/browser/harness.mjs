// Helpers for the browser tests: the herald binary as a child process, Debian's
// chromium through playwright-core, and an EventSource recorder inside a page.
// Every wait here is bounded; nothing downloads a browser.

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');

/** The herald binary: $HERALD_BIN, else target/debug/herald built by scripts/test. */
export const heraldBin = process.env.HERALD_BIN ?? path.join(repoRoot, 'target', 'debug', 'herald');

/** Debian's chromium (`apt-get install chromium`); $CHROMIUM_BIN overrides it. */
export const chromiumBin = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

/** The cookie name for plain-HTTP development: `__Secure-` cookies need https. */
export const COOKIE_NAME = 'mercure_access_token';

const STARTUP_TIMEOUT_MS = 20_000;
/** How long a stopped hub may take to exit by itself before it is killed. */
const STOP_TIMEOUT_MS = 5_000;

/**
 * Starts `herald serve --dev` on a free loopback port with a temporary
 * configuration file holding `configToml` and a temporary data directory.
 *
 * Resolves to { address, url, origin, publisherToken, subscriberToken,
 * devSecret, dataDir, logs(), restart(), stop() }. `restart()` stops the
 * process with SIGTERM and starts a new one on the same address, data
 * directory and development secret (so the printed tokens stay valid); it
 * resolves to how the old process exited. `stop()` also removes the files.
 */
export async function startHub(configToml) {
  if (!existsSync(heraldBin)) {
    throw new Error(
      `the herald binary is missing at ${heraldBin}: build it first with ` +
        '`cargo build --workspace --bins` (scripts/test does), or set HERALD_BIN',
    );
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'herald-browser-'));
  const configPath = path.join(dir, 'herald.toml');
  const dataDir = path.join(dir, 'data');
  await writeFile(configPath, configToml);

  // Arguments and output of every process this hub has had, for failure messages.
  const runs = [];
  let child = null;

  const stopProcess = async () => {
    const running = child;
    child = null;
    if (!running) return null;
    if (running.exitCode !== null || running.signalCode !== null) {
      return { code: running.exitCode, signal: running.signalCode, killed: false };
    }
    const exited = new Promise((resolve) => running.once('exit', (code, signal) => resolve({ code, signal })));
    running.kill('SIGTERM');
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      running.kill('SIGKILL');
    }, STOP_TIMEOUT_MS);
    const status = await exited;
    clearTimeout(timer);
    return { ...status, killed };
  };

  const launch = async (listen, devSecret) => {
    const args = ['serve', '--dev', '--listen', listen, '--config', configPath, '--data-dir', dataDir];
    // One argument: a secret starting with '-' would read as a flag.
    if (devSecret) args.push(`--dev-secret=${devSecret}`);
    const proc = spawn(heraldBin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1' },
    });
    child = proc;
    const run = { args, stdout: '', stderr: '' };
    runs.push(run);
    const outputs = () => `--- herald stdout ---\n${run.stdout}\n--- herald stderr ---\n${run.stderr}`;
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      run.stderr += chunk;
    });
    proc.stdout.on('data', (chunk) => {
      run.stdout += chunk;
    });
    try {
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`herald did not print its tokens within ${STARTUP_TIMEOUT_MS} ms`)),
          STARTUP_TIMEOUT_MS,
        );
        const onExit = (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`herald exited before it was ready (code ${code}, signal ${signal})`));
        };
        proc.once('exit', onExit);
        proc.once('error', (error) => {
          clearTimeout(timer);
          reject(new Error(`cannot start ${heraldBin}: ${error.message}`));
        });
        proc.stdout.on('data', () => {
          const { stdout } = run;
          const listening = stdout.match(/^herald listening on (\S+) \(hub URL (\S+)\)$/m);
          const secret = stdout.match(/^ {2}token secret \(HS256[^)]*\): +(\S+)$/m);
          const publisher = stdout.match(/^ {2}publisher token: +(\S+)$/m);
          const subscriber = stdout.match(/^ {2}subscriber token: +(\S+)$/m);
          if (listening && secret && publisher && subscriber) {
            clearTimeout(timer);
            proc.off('exit', onExit);
            resolve({
              address: listening[1],
              url: listening[2],
              devSecret: secret[1],
              publisherToken: publisher[1],
              subscriberToken: subscriber[1],
            });
          }
        });
      });
    } catch (error) {
      await stopProcess();
      error.message += `\n${outputs()}`;
      throw error;
    }
  };

  const hub = {
    dataDir,
    logs: () =>
      runs
        .map((r, i) => `=== herald run ${i + 1}: ${r.args.join(' ')}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`)
        .join('\n'),
    stop: async () => {
      await stopProcess();
      await rm(dir, { recursive: true, force: true });
    },
    restart: async () => {
      const exit = await stopProcess();
      Object.assign(hub, await launch(hub.address, hub.devSecret));
      return exit;
    },
  };
  try {
    Object.assign(hub, await launch('127.0.0.1:0', null));
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  hub.origin = new URL(hub.url).origin;
  return hub;
}

/**
 * Publishes an update with the publisher token (form-encoded, as the spec's
 * examples do) and resolves to the id the hub assigned. `token` defaults to the
 * development publisher token; any other (a legacy one) may be given.
 */
export async function publish(hub, fields, token = hub.publisherToken) {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) body.append(name, v);
  }
  const response = await fetch(hub.url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`publishing failed with ${response.status}: ${text}`);
  }
  return text;
}

/**
 * Registers a hook on test `t` that, when it fails, prints the output of
 * every process `hub` has had as diagnostic lines.
 */
export function logsOnFailure(t, hub) {
  t.after(() => {
    if (t.passed !== false) return;
    for (const line of hub.logs().split('\n')) t.diagnostic(line);
  });
}

/** Launches Debian's chromium headless; fails loudly when it is missing. */
export async function launchChromium() {
  if (!existsSync(chromiumBin)) {
    throw new Error(
      `chromium is missing at ${chromiumBin}: install it with \`apt-get install chromium\` ` +
        '(scripts/test does when run as root); no browser is ever downloaded',
    );
  }
  // launch() gives the browser a fresh temporary --user-data-dir of its own
  // (and refuses one in `args`), removed again by close().
  return chromium.launch({
    executablePath: chromiumBin,
    headless: true,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Opens a page on the hub's origin (the protected resource metadata document:
 * any page of that origin would do), so that EventSource requests are
 * same-origin and carry the origin's cookies.
 */
export async function openHubPage(context, hub) {
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const hubPath = new URL(hub.url).pathname;
  const response = await page.goto(`${hub.origin}/.well-known/oauth-protected-resource${hubPath}`);
  if (!response || !response.ok()) {
    throw new Error(`cannot load a page on the hub origin: ${response?.status()}`);
  }
  return page;
}

/**
 * Opens `new EventSource(url, init)` in the page and records what it sees into
 * `window.__sse[name]`: messages, opens, errors and ready states.
 */
export async function openEventSource(page, name, url, init = {}) {
  await page.evaluate(
    ({ name, url, init }) => {
      window.__sse ??= {};
      const record = { messages: [], opens: 0, errors: 0, states: [] };
      const source = new EventSource(url, init);
      window.__sse[name] = record;
      window.__sources ??= {};
      window.__sources[name] = source;
      source.onopen = () => {
        record.opens += 1;
        record.states.push('open');
      };
      source.onerror = () => {
        record.errors += 1;
        record.states.push(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
      };
      source.onmessage = (event) => {
        record.messages.push({ type: event.type, data: event.data, lastEventId: event.lastEventId });
      };
    },
    { name, url, init },
  );
}

/** The record of the EventSource `name` in `page`. */
export function record(page, name) {
  return page.evaluate((name) => {
    const { messages, opens, errors, states } = window.__sse[name];
    return { messages, opens, errors, states, readyState: window.__sources[name].readyState };
  }, name);
}

/** Waits (bounded) until `predicate(record)` holds for the EventSource `name`. */
export async function waitForRecord(page, name, predicateSource, description, timeout = 10_000) {
  try {
    await page.waitForFunction(
      ({ name, predicateSource }) => {
        const r = window.__sse?.[name];
        if (!r) return false;
        // eslint-disable-next-line no-new-func
        const predicate = new Function('r', 'readyState', `return (${predicateSource});`);
        return predicate(r, window.__sources[name].readyState);
      },
      { name, predicateSource },
      { timeout, polling: 50 },
    );
  } catch (error) {
    const seen = await record(page, name).catch(() => '(page gone)');
    throw new Error(
      `timed out after ${timeout} ms waiting for ${description}; the EventSource saw ${JSON.stringify(seen)}`,
      { cause: error },
    );
  }
}

/** The hub URL with `match` parameters for `topics`. */
export function subscribeUrl(hub, ...topics) {
  const url = new URL(hub.url);
  for (const topic of topics) url.searchParams.append('match', topic);
  return url.toString();
}

/**
 * Waits (bounded, polling) until `predicate()` holds; the error names
 * `description` and, when given, what `state()` says.
 */
export async function waitUntil(predicate, description, { timeout = 10_000, state } = {}) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${description}${state ? `; ${state()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ---------------------------------------------------------------------------
// The pre-draft-08 ("legacy") protocol, which the hub serves in compatibility
// mode: `topic` selectors, JWTs with a `mercure` claim, the
// `mercureAuthorization` cookie and the `lastEventID` query parameter.

/** The legacy cookie's name, and the compatibility mode's default. */
export const LEGACY_COOKIE_NAME = 'mercureAuthorization';

/** A fresh HS256 secret: 64 characters, over the 32 bytes the hub requires. */
export function randomSecret() {
  return randomBytes(32).toString('hex');
}

/**
 * Mints a legacy Mercure token with node's crypto alone (independently of
 * herald's token code, so the tests check interoperability): the JWS that
 * lcobucci/jwt and the old specification's examples produce, header
 * `{"typ":"JWT","alg":"HS256"}` and claims `{"mercure": mercure}`, with no
 * iss, aud or typ claim and an `exp` only when `expiresIn` (seconds) is given.
 * `mercure` is e.g. `{ publish: ['*'] }` or `{ subscribe: [...], payload: {...} }`.
 */
export function mintLegacyToken(secret, mercure, { expiresIn } = {}) {
  const part = (value) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
  const claims = { mercure };
  if (expiresIn !== undefined) claims.exp = Math.floor(Date.now() / 1000) + expiresIn;
  const input = `${part({ typ: 'JWT', alg: 'HS256' })}.${part(claims)}`;
  const signature = createHmac('sha256', Buffer.from(secret, 'utf8')).update(input).digest('base64url');
  return `${input}.${signature}`;
}

/**
 * Starts a hub with the compatibility mode on (the agreed `[compatibility]`
 * table) and fresh publisher and subscriber secrets, after `config` (other
 * tables). `cookieName` is written only when given, so the default is tested
 * otherwise. The hub also gets `legacy`: { publisherSecret, subscriberSecret,
 * publisherToken (allowed to publish to every topic) }.
 */
export async function startCompatHub({ config = '', cookieName } = {}) {
  const publisherSecret = randomSecret();
  const subscriberSecret = randomSecret();
  const hub = await startHub(`${config}
[compatibility]
enabled = true
publisher_hs256_secrets = ["${publisherSecret}"]
subscriber_hs256_secrets = ["${subscriberSecret}"]
publisher_public_key_files = []
subscriber_public_key_files = []
${cookieName === undefined ? '' : `cookie_name = "${cookieName}"\n`}`);
  hub.legacy = {
    publisherSecret,
    subscriberSecret,
    publisherToken: mintLegacyToken(publisherSecret, { publish: ['*'] }),
  };
  return hub;
}

/**
 * The hub URL with a legacy `topic` parameter for each selector, then the
 * other `params` (e.g. `authorization`, `lastEventID`).
 */
export function legacySubscribeUrl(hub, topics, params = {}) {
  const url = new URL(hub.url);
  for (const topic of topics) url.searchParams.append('topic', topic);
  for (const [name, value] of Object.entries(params)) url.searchParams.append(name, value);
  return url.toString();
}

/** Reads a response body, giving up after `timeout` ms (for error messages). */
export async function boundedText(response, timeout = 2_000) {
  let timer;
  const gaveUp = new Promise((resolve) => {
    timer = setTimeout(() => resolve('(no body within 2 s)'), timeout);
  });
  try {
    return await Promise.race([response.text().catch((e) => `(unreadable body: ${e.message})`), gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A Node subscriber that reads the event stream with `fetch` and parses it
 * itself (the Server-Sent Events parsing rules, written here and not taken from
 * herald). Resolves once the hub answered 200 with an event stream: the hub
 * registers a subscription before it answers. Any other answer throws with the
 * status, the WWW-Authenticate header and the body.
 *
 * The result has `name`, `events` ({ id, type, data, retry }), `comments`, `ended`,
 * `headers`, `waitFor(predicate, description, timeout)` and `close()`.
 */
export async function openSseStream(url, { headers = {}, name = 'subscriber', timeout = 10_000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`${name}: no response from the hub within ${timeout} ms`)),
    timeout,
  );
  let response;
  try {
    response = await fetch(url, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: controller.signal,
    });
  } finally {
    clearTimeout(timer);
  }
  const contentType = response.headers.get('content-type') ?? '';
  if (response.status !== 200 || !contentType.startsWith('text/event-stream')) {
    const body = await boundedText(response);
    controller.abort();
    const challenge = response.headers.get('www-authenticate');
    throw new Error(
      `${name}: GET ${url} was answered ${response.status} (${contentType || 'no content type'})` +
        `${challenge ? `, WWW-Authenticate: ${challenge}` : ''}, not an event stream: ${body.trim()}`,
    );
  }

  const stream = { name, headers: response.headers, events: [], comments: 0, ended: false, error: null };
  (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    let data = null;
    let type = '';
    let retry;
    let lastEventId = '';
    const line = (text) => {
      if (text === '') {
        if (data !== null) {
          stream.events.push({ id: lastEventId, type: type || 'message', data, retry });
        }
        data = null;
        type = '';
        retry = undefined;
        return;
      }
      if (text.startsWith(':')) {
        stream.comments += 1;
        return;
      }
      const colon = text.indexOf(':');
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? '' : text.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data = data === null ? value : `${data}\n${value}`;
      else if (field === 'event') type = value;
      else if (field === 'id' && !value.includes('\0')) lastEventId = value;
      else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
    };
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        // Complete lines only; a trailing CR may be the first half of CRLF.
        const lines = buffer.split(/\r\n|\n|\r(?!$)/);
        buffer = lines.pop();
        lines.forEach(line);
      }
    } catch (error) {
      if (!controller.signal.aborted) stream.error = error;
    } finally {
      stream.ended = true;
    }
  })();

  stream.waitFor = async (predicate, description, waitTimeout = 10_000) => {
    const deadline = Date.now() + waitTimeout;
    while (!predicate(stream)) {
      if (Date.now() > deadline || (stream.ended && !predicate(stream))) {
        throw new Error(
          `${name}: ${stream.ended ? 'the stream ended' : `timed out after ${waitTimeout} ms`} waiting for ${description}; ` +
            `it received ${JSON.stringify(stream.events)}${stream.error ? ` (error: ${stream.error.message})` : ''}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  stream.close = () => controller.abort();
  return stream;
}

// ---------------------------------------------------------------------------
// Symfony's Mercure component (Debian's php-symfony-mercure) as a publisher.

const publishScript = path.join(here, 'php', 'publish.php');
/** PHP's command-line interpreter: $PHP_BIN, else `php` on the PATH. */
export const phpBin = process.env.PHP_BIN ?? 'php';
const SYMFONY_INSTALL_HINT =
  'install them with `apt-get install php-cli php-symfony-mercure` (scripts/test does when run as root)';

/** `env` without proxy settings: the hub is on the loopback interface. */
function withoutProxy(env) {
  const copy = { ...env };
  for (const name of ['http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']) delete copy[name];
  return { ...copy, no_proxy: '127.0.0.1,localhost', NO_PROXY: '127.0.0.1,localhost' };
}

/** Runs tests/browser/php/publish.php with `args` and `env`; bounded. */
function runPhp(args, env, timeout = 20_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(phpBin, [publishScript, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...withoutProxy(process.env), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`php ${args.join(' ')} did not finish within ${timeout} ms\n${stderr}`));
    }, timeout);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(
        new Error(
          error.code === 'ENOENT'
            ? `PHP is missing (\`${phpBin}\` not found): the Symfony publisher test needs php-cli and php-symfony-mercure; ${SYMFONY_INSTALL_HINT}`
            : `cannot run ${phpBin}: ${error.message}`,
        ),
      );
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Throws, saying what to install, unless PHP and Symfony's Mercure component
 * (with its HTTP client) can be loaded. Resolves to the script's description
 * of what it loaded.
 */
export async function requireSymfonyMercure() {
  const { code, stdout, stderr } = await runPhp(['--check'], {});
  if (code !== 0) {
    throw new Error(`Symfony's Mercure component cannot be loaded: ${(stderr || stdout).trim()}; ${SYMFONY_INSTALL_HINT}`);
  }
  return stdout.trim();
}

/**
 * Publishes `update` ({ topics, data, private, id, type, retry }) with
 * `Symfony\Component\Mercure\Hub` and a `StaticTokenProvider` holding
 * `token`; resolves to the id that `Hub::publish()` returned.
 */
export async function symfonyPublish(hub, token, update) {
  const { code, signal, stdout, stderr } = await runPhp([hub.url, JSON.stringify(update)], { MERCURE_JWT: token });
  if (code !== 0) {
    throw new Error(`Symfony's publisher failed (exit ${code ?? signal}): ${stderr.trim()}`);
  }
  return stdout.replace(/\n$/, '');
}
