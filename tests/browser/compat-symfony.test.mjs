// Compatibility mode with a real third-party publisher: Symfony's Mercure
// component (Debian's php-symfony-mercure) publishes through
// `Symfony\Component\Mercure\Hub` with a legacy token, and subscribers of both
// protocol revisions receive what they may: legacy `topic=` subscribers (token
// in the Authorization header, in the `authorization` query parameter, or
// none) and a draft-08 `match=` subscriber with the development token.
//
// Run: cargo build --workspace --bins && cd tests/browser && npm ci && npm test
// (scripts/test does all of it, installing php-cli and php-symfony-mercure
// with apt when they are missing).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import {
  LEGACY_COOKIE_NAME,
  legacySubscribeUrl,
  logsOnFailure,
  mintLegacyToken,
  openSseStream,
  requireSymfonyMercure,
  startCompatHub,
  subscribeUrl,
  symfonyPublish,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 60_000;

describe('Symfony Mercure publishing to a hub in compatibility mode', () => {
  let hub;
  before(async () => {
    // A missing PHP or component is an error saying what to install, never a skip.
    await requireSymfonyMercure();
    hub = await startCompatHub({
      cookieName: LEGACY_COOKIE_NAME,
      config: `
[subscribers]
anonymous = true
`,
    });
  });
  after(async () => {
    await hub?.stop();
  });

  test('public and private updates reach exactly the subscribers allowed to see them', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    logsOnFailure(t, hub);
    const book = 'https://example.com/books/1';
    const isbn = 'urn:isbn:9780441013593';
    const streams = [];
    try {
      // A legacy subscriber with its token in the Authorization header, whose
      // `mercure.subscribe` (a URI template) covers the private topic. Its URL
      // also has an `authorization` parameter allowing something else: the
      // header wins.
      const headerToken = mintLegacyToken(hub.legacy.subscriberSecret, {
        subscribe: ['https://example.com/books/{id}'],
        payload: { user: 'https://example.com/users/1' },
      });
      const ignoredToken = mintLegacyToken(hub.legacy.subscriberSecret, { subscribe: ['https://example.com/authors/{id}'] });
      const headerUrl = legacySubscribeUrl(hub, ['https://example.com/books/{id}'], { authorization: ignoredToken });
      const legacyHeader = await openSseStream(headerUrl, {
        name: 'legacy subscriber (Authorization header)',
        headers: { authorization: `Bearer ${headerToken}` },
      });
      streams.push(legacyHeader);
      // A legacy subscriber with its token in the `authorization` query
      // parameter, allowed the exact topic, with an expiry.
      const queryToken = mintLegacyToken(hub.legacy.subscriberSecret, { subscribe: [book] }, { expiresIn: 3600 });
      const legacyQuery = await openSseStream(legacySubscribeUrl(hub, [book], { authorization: queryToken }), {
        name: 'legacy subscriber (authorization query parameter)',
      });
      streams.push(legacyQuery);
      // A legacy subscriber without a token: public updates only.
      const anonymous = await openSseStream(legacySubscribeUrl(hub, ['*']), { name: 'anonymous legacy subscriber' });
      streams.push(anonymous);
      // A draft-08 subscriber: `match=` and the development (RFC 9068) token.
      const draft08 = await openSseStream(subscribeUrl(hub, book), {
        name: 'draft-08 subscriber',
        headers: { authorization: `Bearer ${hub.subscriberToken}` },
      });
      streams.push(draft08);

      // A public update with every field Symfony's Update has.
      const publicUpdate = {
        topics: [book, isbn],
        data: '{"@id":"/books/1","title":"Dune"}\nsecond line',
        private: false,
        id: `urn:uuid:${randomUUID()}`,
        type: 'book-updated',
        retry: 2500,
      };
      const publicId = await symfonyPublish(hub, hub.legacy.publisherToken, publicUpdate);
      assert.equal(publicId, publicUpdate.id, 'the hub kept the id Symfony sent');
      // A private update; the hub generates its id.
      const privateUpdate = { topics: [book], data: 'private: for token holders only', private: true };
      const privateId = await symfonyPublish(hub, hub.legacy.publisherToken, privateUpdate);
      assert.ok(privateId.length > 0, 'Hub::publish() returned the generated id');
      // A later public marker: updates arrive in order, so once it is there, a
      // private update that was going to reach a subscriber would have.
      const marker = { topics: [book], data: 'marker' };
      const markerId = await symfonyPublish(hub, hub.legacy.publisherToken, marker);

      const expectedPublic = {
        id: publicId,
        type: 'book-updated',
        data: publicUpdate.data,
        retry: 2500,
      };
      const expectedPrivate = { id: privateId, type: 'message', data: privateUpdate.data, retry: undefined };
      const expectedMarker = { id: markerId, type: 'message', data: 'marker', retry: undefined };
      const wanted = [
        [legacyHeader, [expectedPublic, expectedPrivate, expectedMarker]],
        [legacyQuery, [expectedPublic, expectedPrivate, expectedMarker]],
        [draft08, [expectedPublic, expectedPrivate, expectedMarker]],
        [anonymous, [expectedPublic, expectedMarker]],
      ];
      for (const [stream] of wanted) {
        await stream.waitFor((s) => s.events.some((e) => e.id === markerId), 'the marker update');
      }
      for (const [stream, events] of wanted) {
        assert.deepEqual(stream.events, events, `the ${stream.name} got exactly the updates it may see, in order`);
      }
      assert.ok(
        !anonymous.events.some((e) => e.id === privateId || e.data === privateUpdate.data),
        'the private update never reached the subscriber without a token',
      );
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  test('a legacy token that does not allow the topic cannot publish', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    logsOnFailure(t, hub);
    const narrow = mintLegacyToken(hub.legacy.publisherSecret, { publish: ['https://example.com/authors/{id}'] });
    await assert.rejects(
      symfonyPublish(hub, narrow, { topics: ['https://example.com/books/2'], data: 'not allowed' }),
      /the hub answered 403/,
    );
    // Signed with the subscriber secret: not a publisher token at all.
    const wrongKey = mintLegacyToken(hub.legacy.subscriberSecret, { publish: ['*'] });
    await assert.rejects(
      symfonyPublish(hub, wrongKey, { topics: ['https://example.com/books/2'], data: 'not allowed' }),
      /the hub answered 401/,
    );
  });
});
