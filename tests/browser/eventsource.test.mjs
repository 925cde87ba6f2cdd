// A real browser's EventSource against the herald binary: a public update, a
// private one through the cookie, and resumption after the hub drops the stream.
//
// Run: cargo build --workspace --bins && cd tests/browser && npm ci && npm test
// (scripts/test does all of it, installing chromium with apt when it is missing).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  COOKIE_NAME,
  launchChromium,
  openEventSource,
  openHubPage,
  publish,
  record,
  startHub,
  subscribeUrl,
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

describe('a hub that keeps connections open', () => {
  let hub;
  before(async () => {
    hub = await startHub(`
[auth]
# __Secure- cookies need https; this is the plain-HTTP development name.
cookie_name = "${COOKIE_NAME}"

[subscribers]
anonymous = true
`);
  });
  after(async () => {
    await hub?.stop();
  });

  test('a public update reaches the page with its data and id', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await browser.newContext();
    try {
      const page = await openHubPage(context, hub);
      const topic = 'https://example.com/books/1';
      await openEventSource(page, 'books', subscribeUrl(hub, topic));
      await waitForRecord(page, 'books', 'r.opens >= 1', 'the EventSource to open');

      const data = '{"title":"Dune"}\nsecond line';
      const id = await publish(hub, { topic, data });
      assert.ok(id.length > 0, 'the hub answered with the update id');
      await waitForRecord(page, 'books', 'r.messages.length >= 1', 'the public update');

      const seen = await record(page, 'books');
      assert.deepEqual(seen.messages, [{ type: 'message', data, lastEventId: id }]);
      assert.equal(seen.errors, 0, 'the connection never failed');
    } finally {
      await context.close();
    }
  });

  test('a private update reaches only the page whose cookie holds a subscriber token', { timeout: TEST_TIMEOUT_MS }, async () => {
    const withCookie = await browser.newContext();
    const without = await browser.newContext();
    try {
      await withCookie.addCookies([{ name: COOKIE_NAME, value: hub.subscriberToken, url: hub.origin }]);
      const topic = 'https://example.com/users/42/inbox';
      const url = subscribeUrl(hub, topic);

      const authorized = await openHubPage(withCookie, hub);
      const anonymous = await openHubPage(without, hub);
      // The cookie is really there for the hub's origin, and only in one context.
      assert.deepEqual(
        (await withCookie.cookies(hub.origin)).map((c) => c.name),
        [COOKIE_NAME],
      );
      assert.deepEqual(await without.cookies(hub.origin), []);

      await openEventSource(authorized, 'inbox', url);
      await openEventSource(anonymous, 'inbox', url);
      await waitForRecord(authorized, 'inbox', 'r.opens >= 1', 'the cookie page to open');
      await waitForRecord(anonymous, 'inbox', 'r.opens >= 1', 'the cookie-less page to open');

      const privateId = await publish(hub, { topic, data: 'for your eyes only', private: 'on' });
      const publicId = await publish(hub, { topic, data: 'for everyone' });

      await waitForRecord(authorized, 'inbox', 'r.messages.length >= 2', 'both updates on the cookie page');
      // Updates arrive in order: once the later public one is there, the
      // private one would have been delivered before it.
      await waitForRecord(anonymous, 'inbox', 'r.messages.length >= 1', 'the public update on the cookie-less page');

      const withToken = await record(authorized, 'inbox');
      assert.deepEqual(withToken.messages, [
        { type: 'message', data: 'for your eyes only', lastEventId: privateId },
        { type: 'message', data: 'for everyone', lastEventId: publicId },
      ]);
      const withoutToken = await record(anonymous, 'inbox');
      assert.deepEqual(withoutToken.messages, [
        { type: 'message', data: 'for everyone', lastEventId: publicId },
      ]);
      assert.equal(withToken.errors, 0);
      assert.equal(withoutToken.errors, 0);
    } finally {
      await withCookie.close();
      await without.close();
    }
  });
});

describe('a hub that drops connections after 2 seconds', () => {
  let hub;
  before(async () => {
    hub = await startHub(`
[subscribers]
anonymous = true
max_lifetime = "2s"
`);
  });
  after(async () => {
    await hub?.stop();
  });

  test('the EventSource resumes with Last-Event-ID and gets every update once, in order', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await browser.newContext();
    try {
      const page = await openHubPage(context, hub);
      const topic = 'https://example.com/feeds/news';
      const url = subscribeUrl(hub, topic);

      // What the browser sends on each (re)connection and what the hub answers.
      const connections = [];
      page.on('response', async (response) => {
        if (!response.url().startsWith(hub.url)) return;
        const request = response.request();
        const sent = await request.allHeaders().catch(() => ({}));
        connections.push({
          lastEventId: sent['last-event-id'] ?? null,
          status: response.status(),
          resumedAfter: response.headers()['mercure-last-event-id'] ?? null,
        });
      });

      await openEventSource(page, 'news', url);
      await waitForRecord(page, 'news', 'r.opens >= 1', 'the EventSource to open');
      const first = await publish(hub, { topic, data: 'one' });
      await waitForRecord(page, 'news', 'r.messages.length >= 1', 'the first update');

      // The hub closes the stream at its maximum lifetime; the browser reconnects
      // after its reconnection time (3 s by default in Chromium).
      await waitForRecord(page, 'news', 'r.errors >= 1 && readyState === 0', 'the hub to drop the stream', 10_000);
      const second = await publish(hub, { topic, data: 'two' });
      const third = await publish(hub, { topic, data: 'three' });
      const during = await record(page, 'news');
      assert.equal(during.readyState, 0, 'the updates were published while the browser was reconnecting');
      assert.equal(during.messages.length, 1);

      await waitForRecord(page, 'news', 'r.opens >= 2', 'the EventSource to reconnect', 10_000);
      await waitForRecord(page, 'news', 'r.messages.length >= 3', 'the updates missed while disconnected');
      const fourth = await publish(hub, { topic, data: 'four' });
      await waitForRecord(page, 'news', 'r.messages.length >= 4', 'an update on the resumed stream');

      // One more drop and reconnection: resuming after the last id replays nothing twice.
      await waitForRecord(page, 'news', 'r.opens >= 3', 'a second reconnection', 15_000);
      const fifth = await publish(hub, { topic, data: 'five' });
      await waitForRecord(page, 'news', 'r.messages.length >= 5', 'an update after the second reconnection');

      const seen = await record(page, 'news');
      assert.deepEqual(
        seen.messages,
        [
          ['one', first],
          ['two', second],
          ['three', third],
          ['four', fourth],
          ['five', fifth],
        ].map(([data, lastEventId]) => ({ type: 'message', data, lastEventId })),
        'every update exactly once, in order',
      );
      assert.ok(seen.states.every((s) => s !== 'closed'), `the EventSource never gave up: ${seen.states}`);

      // The reconnections carried Last-Event-ID and the hub resumed from it.
      assert.ok(connections.length >= 3, `three connections were seen: ${JSON.stringify(connections)}`);
      assert.deepEqual(connections.slice(0, 3), [
        { lastEventId: null, status: 200, resumedAfter: null },
        { lastEventId: first, status: 200, resumedAfter: first },
        { lastEventId: fourth, status: 200, resumedAfter: fourth },
      ]);
    } finally {
      await context.close();
    }
  });
});
