// Presence in a real browser: a page lists who is in a room by calling the
// subscription API, then follows subscription events from the API's cursor
// with an EventSource authorized by the cookie. Other pages and Node clients
// join and leave, some while the page is still loading; the page's list must
// always converge on the hub's.
//
// Run: cargo build --workspace --bins && cd tests/browser && npm ci && npm test

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  COOKIE_NAME,
  launchChromium,
  openEventSource,
  openHubPage,
  startHub,
  subscribeUrl,
  waitForRecord,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 90_000;
const ROOM = 'https://example.com/rooms/42?lang=fr#main';

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/** RFC 6570 simple expansion: everything but unreserved characters encoded. */
function expand(value) {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A Node subscriber in the room; resolves once the stream is open. */
async function nodeSubscriber(hub) {
  const controller = new AbortController();
  const response = await fetch(subscribeUrl(hub, ROOM), { signal: controller.signal });
  assert.equal(response.status, 200);
  const reader = response.body.getReader();
  await reader.read(); // the opening comment: registered
  return {
    close: () => {
      controller.abort();
      reader.cancel().catch(() => {});
    },
  };
}

/** Who is in the room according to the hub (the API, with the subscriber token). */
async function online(hub) {
  const hubPath = new URL(hub.url).pathname;
  const response = await fetch(`${hub.origin}${hubPath}/subscriptions/exact/${expand(ROOM)}`, {
    headers: { authorization: `Bearer ${hub.subscriberToken}` },
  });
  assert.equal(response.status, 200);
  const doc = await response.json();
  return doc.subscriptions.map((s) => s.subscriber).sort();
}

/**
 * The page under test: API first (cursor from the Link header), then the
 * subscription events from that cursor. Its list is `window.__online`.
 */
async function openPresencePage(context, hub) {
  const page = await openHubPage(context, hub);
  await page.evaluate(
    async ({ hubUrl, room, collection }) => {
      const online = new Map();
      window.__online = () => [...online.keys()].sort();
      window.__events = 0;
      const response = await fetch(collection, { credentials: 'same-origin' });
      if (response.status !== 200) throw new Error(`the API answered ${response.status}`);
      const link = response.headers.get('link') ?? '';
      const cursor = /last-event-id="([^"]*)"/.exec(link)?.[1];
      if (!cursor) throw new Error(`no cursor in the Link header: ${link}`);
      for (const s of (await response.json()).subscriptions) online.set(s.subscriber, s);
      const url = new URL(hubUrl);
      url.searchParams.append('match_urlpattern', `${url.pathname}/subscriptions/*`);
      url.searchParams.append('last_event_id', cursor);
      const source = new EventSource(url);
      window.__presence = source;
      source.addEventListener('mercure', (event) => {
        window.__events += 1;
        const s = JSON.parse(event.data);
        if (s.type !== 'subscription' || s.match !== room || s.match_type !== 'exact') return;
        if (s.active) online.set(s.subscriber, s);
        else online.delete(s.subscriber);
      });
      await new Promise((resolve, reject) => {
        source.onopen = resolve;
        source.onerror = () => reject(new Error('the presence EventSource failed'));
      });
    },
    {
      hubUrl: hub.url,
      room: ROOM,
      collection: `${new URL(hub.url).pathname}/subscriptions/exact/${expand(ROOM)}`,
    },
  );
  return page;
}

/** Waits until the page's list equals `expected`. */
async function waitForList(page, expected, description) {
  try {
    await page.waitForFunction(
      (expected) => JSON.stringify(window.__online()) === JSON.stringify(expected),
      expected,
      { timeout: 10_000, polling: 50 },
    );
  } catch (error) {
    const seen = await page.evaluate(() => window.__online()).catch(() => '(page gone)');
    throw new Error(`${description}: the page lists ${JSON.stringify(seen)}, the hub ${JSON.stringify(expected)}`, {
      cause: error,
    });
  }
}

describe('a hub with active subscriptions', () => {
  let hub;
  before(async () => {
    hub = await startHub(`
[auth]
cookie_name = "${COOKIE_NAME}"

[subscribers]
anonymous = true

[subscriptions]
enabled = true
`);
  });
  after(async () => {
    await hub?.stop();
  });

  test('the metadata advertises the feature', async () => {
    const hubPath = new URL(hub.url).pathname;
    const response = await fetch(`${hub.origin}/.well-known/oauth-protected-resource${hubPath}`);
    assert.equal((await response.json()).mercure_subscriptions, true);
  });

  test('a page lists who is online and stays correct while others come and go', { timeout: TEST_TIMEOUT_MS }, async () => {
    const watcherContext = await browser.newContext();
    const othersContext = await browser.newContext();
    const nodes = [];
    try {
      await watcherContext.addCookies([{ name: COOKIE_NAME, value: hub.subscriberToken, url: hub.origin }]);
      nodes.push(await nodeSubscriber(hub), await nodeSubscriber(hub));

      // Node clients join while the page is loading: the API + cursor must
      // account for them whichever side of the snapshot they land on.
      const joining = Promise.all([1, 2, 3].map(() => nodeSubscriber(hub)));
      const page = await openPresencePage(watcherContext, hub);
      nodes.push(...(await joining));
      await waitForList(page, await online(hub), 'after loading with concurrent joins');
      assert.equal((await online(hub)).length, 5);

      // Other pages (anonymous EventSources) join.
      const others = [];
      for (const name of ['a', 'b']) {
        const other = await openHubPage(othersContext, hub);
        await openEventSource(other, 'room', subscribeUrl(hub, ROOM));
        await waitForRecord(other, 'room', 'r.opens >= 1', `page ${name} to open`);
        others.push(other);
      }
      await waitForList(page, await online(hub), 'after two pages joined');
      assert.equal((await online(hub)).length, 7);

      // A page closes its EventSource, another page is closed, a Node client leaves.
      await others[0].evaluate(() => window.__sources.room.close());
      await others[1].close();
      nodes.shift().close();
      let expected;
      for (let i = 0; i < 100; i += 1) {
        expected = await online(hub);
        if (expected.length === 4) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(expected.length, 4, 'the hub saw three leave');
      await waitForList(page, expected, 'after three left');

      // A burst of joins and leaves at once.
      const burst = await Promise.all([1, 2, 3, 4].map(() => nodeSubscriber(hub)));
      burst.slice(0, 2).forEach((n) => n.close());
      nodes.push(...burst.slice(2));
      for (let i = 0; i < 100; i += 1) {
        expected = await online(hub);
        if (expected.length === 6) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(expected.length, 6);
      await waitForList(page, expected, 'after a burst');
      assert.ok((await page.evaluate(() => window.__events)) > 0, 'events were followed');

      // Everyone leaves.
      nodes.splice(0).forEach((n) => n.close());
      for (let i = 0; i < 100; i += 1) {
        expected = await online(hub);
        if (expected.length === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitForList(page, [], 'after everyone left');
    } finally {
      nodes.forEach((n) => n.close());
      await watcherContext.close();
      await othersContext.close();
    }
  });

  test('the API refuses a page without a token', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await browser.newContext();
    try {
      const page = await openHubPage(context, hub);
      const hubPath = new URL(hub.url).pathname;
      const status = await page.evaluate(async (path) => (await fetch(path)).status, `${hubPath}/subscriptions`);
      assert.equal(status, 401);
    } finally {
      await context.close();
    }
  });
});
