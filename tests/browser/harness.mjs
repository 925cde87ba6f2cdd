// Helpers for the browser tests: the herald binary as a child process, Debian's
// chromium through playwright-core, and an EventSource recorder inside a page.
// Every wait here is bounded; nothing downloads a browser.

import { spawn } from 'node:child_process';
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

/**
 * Starts `herald serve --dev` on a free loopback port with a temporary
 * configuration file holding `configToml`.
 *
 * Resolves to { url, origin, publisherToken, subscriberToken, stop() }.
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
  await writeFile(configPath, configToml);

  const child = spawn(
    heraldBin,
    ['serve', '--dev', '--listen', '127.0.0.1:0', '--config', configPath, '--data-dir', path.join(dir, 'data')],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const info = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`herald did not print its tokens within ${STARTUP_TIMEOUT_MS} ms`)),
        STARTUP_TIMEOUT_MS,
      );
      const onExit = (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`herald exited before it was ready (code ${code}, signal ${signal})`));
      };
      child.once('exit', onExit);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot start ${heraldBin}: ${error.message}`));
      });
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        const listening = stdout.match(/^herald listening on (\S+) \(hub URL (\S+)\)$/m);
        const publisher = stdout.match(/^ {2}publisher token: +(\S+)$/m);
        const subscriber = stdout.match(/^ {2}subscriber token: +(\S+)$/m);
        if (listening && publisher && subscriber) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve({
            address: listening[1],
            url: listening[2],
            publisherToken: publisher[1],
            subscriberToken: subscriber[1],
          });
        }
      });
    });
    const origin = new URL(info.url).origin;
    return {
      ...info,
      origin,
      logs: () => `--- herald stdout ---\n${stdout}\n--- herald stderr ---\n${stderr}`,
      stop,
    };
  } catch (error) {
    await stop();
    error.message += `\n--- herald stdout ---\n${stdout}\n--- herald stderr ---\n${stderr}`;
    throw error;
  }
}

/**
 * Publishes an update with the publisher token (form-encoded, as the spec's
 * examples do) and resolves to the id the hub assigned.
 */
export async function publish(hub, fields) {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) body.append(name, v);
  }
  const response = await fetch(hub.url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${hub.publisherToken}`,
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
 * Opens `new EventSource(url)` in the page and records what it sees into
 * `window.__sse[name]`: messages, opens, errors and ready states.
 */
export async function openEventSource(page, name, url) {
  await page.evaluate(
    ({ name, url }) => {
      window.__sse ??= {};
      const record = { messages: [], opens: 0, errors: 0, states: [] };
      const source = new EventSource(url);
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
    { name, url },
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
