// Compatibility mode with a real third-party subscriber: the npm `eventsource`
// package (an EventSource for Node) subscribes with a legacy `topic=` URI
// template, loses its connection when the hub restarts on its durable log, and
// resumes with `Last-Event-ID`; and a first connection resumes with the
// legacy `lastEventID` query parameter.
//
// Run: cargo build --workspace --bins && cd tests/browser && npm ci && npm test

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { EventSource } from 'eventsource';

import {
  boundedText,
  legacySubscribeUrl,
  logsOnFailure,
  publish,
  startCompatHub,
  waitUntil,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 60_000;
const BOOKS = 'https://example.com/books/{id}';

/**
 * An `eventsource` EventSource that records its messages and, through the
 * package's `fetch` option, every connection it makes: the Last-Event-ID it
 * sent and what the hub answered. Connections after the first wait for
 * `hold` (when given) before they are sent: the package itself decides when to
 * reconnect and what to send; the test only decides that it happens after the
 * updates it must resume over were published.
 */
function recordedEventSource(url, { hold } = {}) {
  const connections = [];
  const messages = [];
  const errors = [];
  let opens = 0;
  const source = new EventSource(url, {
    fetch: async (input, init) => {
      const sent = new Headers(init.headers);
      const connection = {
        lastEventId: sent.get('last-event-id'),
        status: null,
        responseLastEventId: null,
        responseMercureLastEventId: null,
      };
      connections.push(connection);
      if (connections.length > 1 && hold) await hold;
      try {
        const response = await fetch(input, init);
        connection.status = response.status;
        connection.responseLastEventId = response.headers.get('last-event-id');
        connection.responseMercureLastEventId = response.headers.get('mercure-last-event-id');
        if (response.status !== 200) {
          connection.body = (await boundedText(response.clone())).trim();
          connection.wwwAuthenticate = response.headers.get('www-authenticate');
        }
        return response;
      } catch (error) {
        connection.error = error.message;
        throw error;
      }
    },
  });
  source.addEventListener('open', () => {
    opens += 1;
  });
  source.addEventListener('message', (event) => {
    messages.push({ id: event.lastEventId, data: event.data });
  });
  source.addEventListener('error', (event) => {
    errors.push({ message: event.message, code: event.code, readyState: source.readyState });
  });
  const state = () =>
    `the EventSource (readyState ${source.readyState}) made the connections ${JSON.stringify(connections)}, ` +
    `received ${JSON.stringify(messages)} and saw the errors ${JSON.stringify(errors)}`;
  return {
    source,
    connections,
    messages,
    errors,
    opens: () => opens,
    state,
    /** Waits (bounded) for `predicate`; fails at once if the EventSource gave up. */
    async until(predicate, description, timeout = 10_000) {
      await waitUntil(() => {
        if (source.readyState === EventSource.CLOSED) {
          throw new Error(`the EventSource gave up while waiting for ${description}; ${state()}`);
        }
        return predicate();
      }, description, { timeout, state });
    },
  };
}

describe('the eventsource package on a hub in compatibility mode with a durable log', () => {
  let hub;
  before(async () => {
    hub = await startCompatHub({
      config: `
[log]
kind = "durable"

[subscribers]
anonymous = true
`,
    });
  });
  after(async () => {
    await hub?.stop();
  });

  // Publishes with the legacy token or the draft-08 one: subscribers of the
  // legacy protocol get updates from both kinds of publisher.
  const legacyPublish = (topic, data) => publish(hub, { topic, data }, hub.legacy.publisherToken);
  const draft08Publish = (topic, data) => publish(hub, { topic, data });

  test('after the hub restarts, the client resumes with Last-Event-ID and gets every update once, in order', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    logsOnFailure(t, hub);
    let release;
    const hold = new Promise((resolve) => {
      release = resolve;
    });
    const client = recordedEventSource(legacySubscribeUrl(hub, [BOOKS]), { hold });
    try {
      await client.until(() => client.opens() >= 1, 'the EventSource to open');

      const ids = [];
      ids.push(await legacyPublish('https://example.com/books/1', 'one'));
      ids.push(await draft08Publish('https://example.com/books/2', 'two'));
      // Not matched by the template: never delivered.
      await legacyPublish('https://example.com/authors/1', 'not a book');
      ids.push(await legacyPublish('https://example.com/books/3', 'three'));
      await client.until(() => client.messages.length >= 3, 'the first three updates');

      // SIGTERM, then a new process on the same port and data directory.
      const exit = await hub.restart();
      assert.equal(exit.killed, false, `the hub exited by itself on SIGTERM: ${JSON.stringify(exit)}`);
      // Published after the restart and before the client reconnects.
      ids.push(await legacyPublish('https://example.com/books/4', 'four'));
      await legacyPublish('https://example.com/authors/2', 'still not a book');
      ids.push(await draft08Publish('https://example.com/books/5', 'five'));
      ids.push(await legacyPublish('https://example.com/books/1', 'six'));
      assert.equal(client.messages.length, 3, 'nothing arrived while the client was disconnected');
      assert.equal(client.connections[0].status, 200);

      // The stream ended with the old process; the package reconnects by itself.
      await client.until(() => client.connections.length >= 2, 'the client to try to reconnect', 15_000);
      release();
      await client.until(() => client.messages.length >= 6, 'the updates missed while disconnected', 15_000);
      ids.push(await legacyPublish('https://example.com/books/7', 'seven'));
      await client.until(() => client.messages.length >= 7, 'an update on the resumed stream');

      assert.deepEqual(
        client.messages,
        ['one', 'two', 'three', 'four', 'five', 'six', 'seven'].map((data, i) => ({ id: ids[i], data })),
        'every update exactly once, in order, with no gap',
      );
      assert.equal(client.opens(), 2, client.state());
      assert.equal(client.connections.length, 2, client.state());
      const [first, resumed] = client.connections;
      assert.equal(first.lastEventId, null, 'the first connection resumed nothing');
      assert.equal(resumed.lastEventId, ids[2], 'the reconnection sent the last id received');
      assert.equal(resumed.status, 200, client.state());
      assert.equal(
        resumed.responseLastEventId,
        ids[2],
        `the hub answered with the Last-Event-ID it resumed after; ${client.state()}`,
      );
    } finally {
      release();
      client.source.close();
    }
  });

  test('a first connection resumes from the lastEventID query parameter', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    logsOnFailure(t, hub);
    const from = await legacyPublish('https://example.com/books/10', 'ten');
    const eleven = await draft08Publish('https://example.com/books/11', 'eleven');
    await legacyPublish('https://example.com/authors/10', 'not a book');
    const twelve = await legacyPublish('https://example.com/books/12', 'twelve');

    const client = recordedEventSource(legacySubscribeUrl(hub, [BOOKS], { lastEventID: from }));
    try {
      await client.until(() => client.messages.length >= 2, 'the updates after lastEventID');
      const thirteen = await legacyPublish('https://example.com/books/13', 'thirteen');
      await client.until(() => client.messages.length >= 3, 'a live update after the replay');
      assert.deepEqual(client.messages, [
        { id: eleven, data: 'eleven' },
        { id: twelve, data: 'twelve' },
        { id: thirteen, data: 'thirteen' },
      ]);
      assert.equal(client.connections.length, 1, client.state());
      assert.equal(client.connections[0].lastEventId, null, 'no Last-Event-ID header on a first connection');
      assert.equal(client.connections[0].responseLastEventId, from, client.state());
    } finally {
      client.source.close();
    }
  });
});
