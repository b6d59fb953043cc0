// tocsin — SPDX-License-Identifier: MIT
//
// Unit tests of clients/js/tocsin.js (node --test tests/js/): the pure parts
// (backoff bounds, filter query, incident set and cursor, severity order) on
// tables, then the client's transport policy against fake WebSocket,
// EventSource and fetch on a manual clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    IncidentSet,
    TocsinClient,
    backoffDelay,
    compareSeverity,
    filterQuery,
    impactRank,
    mostSevere,
    normalizeFilter,
    resumeQuery,
} from '../../clients/js/tocsin.js';
import {
    FakeClock,
    flush,
    incident,
    makeEventSource,
    makeFetch,
    makeWebSocket,
    randoms,
} from './fakes.js';

const inc = incident;

/* ------------------------------------------------------------- backoff */

test('backoff: full jitter spans [0, min(cap, base*2^n)] for every attempt', () => {
    const b = { baseMs: 500, capMs: 30000 };
    const rows = [
        [0, 500],
        [1, 1000],
        [2, 2000],
        [5, 16000],
        [6, 30000], // 32000 capped
        [30, 30000],
        [1000, 30000], // no overflow to Infinity/NaN
    ];
    for (const [n, ceiling] of rows) {
        assert.equal(backoffDelay(n, b, () => 0), 0, `attempt ${n}: lower bound is 0`);
        assert.equal(backoffDelay(n, b, () => 0.9999999999), ceiling, `attempt ${n}: upper bound`);
    }
});

test('backoff: random samples stay in bounds and spread over the window', () => {
    const b = { baseMs: 100, capMs: 5000 };
    for (let n = 0; n < 12; n++) {
        const ceiling = Math.min(5000, 100 * 2 ** n);
        let sum = 0;
        for (let i = 0; i < 2000; i++) {
            const d = backoffDelay(n, b);
            assert.ok(d >= 0 && d <= ceiling && Number.isInteger(d), `attempt ${n}: ${d}`);
            sum += d;
        }
        const mean = sum / 2000;
        // Full jitter: the mean is half the ceiling (a loose band, no flakes).
        assert.ok(mean > ceiling * 0.4 && mean < ceiling * 0.6, `attempt ${n}: mean ${mean}`);
    }
});

test('backoff: a negative or missing attempt counts as 0', () => {
    assert.equal(backoffDelay(-3, { baseMs: 500, capMs: 30000 }, () => 0.9999), 500);
    assert.equal(backoffDelay(undefined, undefined, () => 0.9999), 500);
});

/* -------------------------------------------------------------- filter */

test('filter: query string of DESIGN §3 from arrays, strings and aliases', () => {
    const rows = [
        [{}, ''],
        [undefined, ''],
        [{ components: ['playback', 'search'] }, 'components=playback,search'],
        [{ components: 'playback, search' }, 'components=playback,search'],
        [{ regions: ['eu-west'], min_impact: 'minor' }, 'regions=eu-west&min_impact=minor'],
        [{ minImpact: 'major' }, 'min_impact=major'],
        [{ components: [], regions: '', min_impact: '' }, ''],
        [{ components: ['a&b=c'] }, 'components=a%26b%3Dc'],
    ];
    for (const [f, want] of rows) {
        assert.equal(filterQuery(f), want, JSON.stringify(f));
    }
});

test('filter: a bad min_impact or list type throws at once', () => {
    assert.throws(() => normalizeFilter({ min_impact: 'severe' }), TypeError);
    assert.throws(() => normalizeFilter({ components: 42 }), TypeError);
});

test('resume query: since and epoch, or nothing without a cursor', () => {
    assert.equal(resumeQuery(null), '');
    assert.equal(resumeQuery({ epoch: 'a b', seq: 7 }), 'since=7&epoch=a%20b');
});

/* -------------------------------------------------------- incident set */

test('incident set: a snapshot replaces the set and sets the cursor; ended ones are left out', () => {
    const s = new IncidentSet();
    assert.equal(s.cursor, null);
    const incidents = [inc('a', 1), inc('b', 2, { status: 'resolved' })];
    assert.equal(s.applySnapshot({ epoch: 'E', seq: 5, incidents }), true);
    assert.deepEqual(s.cursor, { epoch: 'E', seq: 5 });
    assert.deepEqual(s.list().map((i) => i.incident_id), ['a']);
    assert.equal(s.applySnapshot({ epoch: 'E', seq: 6, incidents: [inc('a', 1)] }), false, 'same content');
    // A reset snapshot may move seq back (the server lost history).
    assert.equal(s.applySnapshot({ epoch: 'F', seq: 2, reset: true, incidents: [] }), true);
    assert.deepEqual(s.cursor, { epoch: 'F', seq: 2 });
    assert.equal(s.size, 0);
});

test('incident set: updates in seq order, duplicates and older versions ignored, end removes', () => {
    const s = new IncidentSet();
    s.applySnapshot({ epoch: 'E', seq: 10, incidents: [] });
    const u = (seq, incident, epoch = 'E') => ({ type: 'update', epoch, seq, incident });
    const rows = [
        [u(11, inc('a', 1)), 'applied', ['a'], 11, 'new incident'],
        [u(11, inc('a', 1)), 'duplicate', ['a'], 11, 'same seq again (replay overlap)'],
        [u(9, inc('z', 1)), 'duplicate', ['a'], 11, 'older seq'],
        [u(13, inc('a', 2, { status: 'identified' })), 'applied', ['a'], 13, 'a gap in seq is normal (filtered)'],
        [u(14, inc('a', 1)), 'unchanged', ['a'], 14, 'an older version never replaces a newer'],
        [u(15, inc('b', 1, { impact: 'critical' })), 'applied', ['b', 'a'], 15, 'most severe first'],
        [u(16, inc('a', 3, { status: 'resolved' })), 'applied', ['b'], 16, 'resolved leaves the set'],
        [u(17, inc('c', 1, { status: 'completed' })), 'unchanged', ['b'], 17, 'end of one never held'],
        [u(18, inc('b', 2), 'F'), 'resync', ['b'], 17, 'another epoch: resubscribe'],
    ];
    for (const [msg, want, ids, seq, why] of rows) {
        assert.equal(s.applyUpdate(msg), want, why);
        assert.deepEqual(s.list().map((i) => i.incident_id), ids, why);
        assert.equal(s.seq, seq, why);
    }
    assert.equal(s.get('a'), undefined);
});

test('incident set: an update before any snapshot asks for a resync', () => {
    const s = new IncidentSet();
    assert.equal(s.applyUpdate({ type: 'update', epoch: 'E', seq: 1, incident: inc('a', 1) }), 'resync');
});

test('incident set: a heartbeat advances the cursor only forward and only in its epoch', () => {
    const s = new IncidentSet();
    s.advance('E', 9);
    assert.equal(s.cursor, null, 'nothing to advance before a snapshot');
    s.applySnapshot({ epoch: 'E', seq: 5, incidents: [] });
    s.advance('E', 9);
    assert.equal(s.seq, 9);
    s.advance('E', 7);
    assert.equal(s.seq, 9);
    s.advance('F', 20);
    assert.equal(s.seq, 9);
});

/* ------------------------------------------------------------ severity */

test('severity: impact first, then most recently updated, then id', () => {
    const rows = [
        [[inc('a', 1, { impact: 'minor' }), inc('b', 1, { impact: 'critical' })], 'b', 'critical > minor'],
        [[inc('a', 1, { impact: 'major' }), inc('b', 1, { impact: 'critical' }), inc('c', 1, { impact: 'none' })],
            'b', 'critical wins'],
        [[inc('a', 1, { impact: 'major', updated_at: '2026-11-25T08:00:00Z' }),
            inc('b', 1, { impact: 'major', updated_at: '2026-11-25T09:00:00Z' })], 'b', 'tie: newest'],
        [[inc('b', 1), inc('a', 1)], 'a', 'full tie: by id, stable'],
        [[inc('a', 1, { impact: 'apocalyptic' }), inc('b', 1, { impact: 'minor' })], 'b', 'unknown impact ranks as none'],
        [[inc('a', 1, { impact: 'none', updated_at: 'garbage' }), inc('b', 1, { impact: 'none' })],
            'b', 'bad date sorts last'],
    ];
    for (const [list, want, why] of rows) {
        assert.equal(mostSevere(list).incident_id, want, why);
        assert.equal([...list].sort(compareSeverity)[0].incident_id, want, why);
    }
    assert.equal(mostSevere([]), null);
    assert.deepEqual(['none', 'minor', 'major', 'critical', 'x'].map(impactRank), [0, 1, 2, 3, 0]);
});

/* -------------------------------------------------------------- client */

function setup(opts = {}) {
    const clock = new FakeClock();
    const WS = makeWebSocket();
    const ES = makeEventSource();
    const fetch = opts.fetch ?? makeFetch(() => new Error('no network'));
    const events = [];
    const client = new TocsinClient({
        url: 'https://status.example.com/base/',
        filter: { components: ['playback'], min_impact: 'minor' },
        WebSocket: WS,
        EventSource: ES,
        fetch,
        setTimeout: clock.setTimeout,
        clearTimeout: clock.clearTimeout,
        random: opts.random ?? (() => 0.5),
        autoStart: false,
        // Long unless a test is about them, so advancing the clock past a
        // retry does not also time out the connection it opens.
        openTimeoutMs: 1e9,
        upgradeIntervalMs: 1e9,
        ...opts.options,
    });
    for (const type of ['state', 'snapshot', 'update', 'change', 'error']) {
        client.addEventListener(type, (e) => events.push({ type, ...e.detail }));
    }
    return { clock, WS, ES, fetch, client, events };
}

const of = (events, type) => events.filter((e) => e.type === type);

test('client: WebSocket URL, subprotocol, snapshot then updates', async () => {
    const { WS, client, events } = setup();
    client.start();
    assert.equal(WS.instances.length, 1);
    const ws = WS.instances[0];
    assert.equal(ws.protocol, 'tocsin.v1');
    assert.equal(ws.url, 'wss://status.example.com/base/v1/ws?components=playback&min_impact=minor');
    assert.equal(client.state, 'connecting');
    ws.accept({ epoch: 'E1', seq: 4, incidents: [inc('a', 1)] });
    assert.equal(client.state, 'open');
    assert.equal(client.transport, 'ws');
    assert.deepEqual(client.incidents.map((i) => i.incident_id), ['a']);
    ws.send({ type: 'update', sub: 'default', epoch: 'E1', seq: 6, incident: inc('a', 2, { status: 'identified' }) });
    assert.equal(client.incidents[0].status, 'identified');
    ws.send({ type: 'update', sub: 'default', epoch: 'E1', seq: 6, incident: inc('a', 2) }); // duplicate
    ws.send({ type: 'update', sub: 'other', epoch: 'E1', seq: 7, incident: inc('x', 1) }); // not ours
    ws.send({ type: 'something-new', epoch: 'E1' }); // unknown types are ignored
    ws.send('not json');
    assert.equal(of(events, 'update').length, 1);
    assert.equal(of(events, 'change').length, 2);
    assert.deepEqual(client.cursor, { epoch: 'E1', seq: 6 });
    ws.send({ type: 'error', code: 'bad_message', message: 'x' });
    assert.equal(of(events, 'error')[0].fatal, false);
});

test('client: a token option goes in every transport\'s query, a function asked per connect', async () => {
    let n = 0;
    const fetch = makeFetch(() => new Error('no network'));
    const { WS, ES, client, clock } = setup({
        fetch,
        options: { token: () => `t.${++n}+/`, fallbackAfter: 1, transports: ['ws', 'sse', 'poll'] },
    });
    client.start();
    assert.equal(WS.instances[0].url, 'wss://status.example.com/base/v1/ws?components=playback&min_impact=minor&token=t.1%2B%2F');
    WS.instances[0].refuse();
    await clock.advance(60000);
    assert.equal(ES.instances.length, 1, 'fallbackAfter 1: SSE next');
    assert.match(ES.instances[0].url, /\/v1\/events\?components=playback&min_impact=minor&token=t\.2%2B%2F$/);
    client.close();
    const fixed = setup({ options: { token: 'abc' } });
    fixed.client.start();
    assert.match(fixed.WS.instances[0].url, /&token=abc$/);
    fixed.client.close();
});

test('client: callbacks in the options receive the event detail', async () => {
    const got = [];
    const clock = new FakeClock();
    const WS = makeWebSocket();
    const client = new TocsinClient({
        url: 'http://h:8080',
        WebSocket: WS,
        setTimeout: clock.setTimeout,
        clearTimeout: clock.clearTimeout,
        onSnapshot: (d) => got.push(['snapshot', d.incidents.length]),
        onChange: (d) => got.push(['change', d.incidents.length]),
        onState: (d) => got.push(['state', d.state]),
    });
    assert.equal(WS.instances.length, 0, 'autoStart waits a microtask, so listeners added now see everything');
    await flush();
    assert.equal(WS.instances[0].url, 'ws://h:8080/v1/ws');
    WS.instances[0].accept({ incidents: [inc('a', 1)] });
    assert.deepEqual(got, [
        ['state', 'connecting'],
        ['state', 'open'],
        ['snapshot', 1],
        ['change', 1],
    ]);
    client.close();
});

test('client: reconnects with since and epoch after a drop, with jittered backoff', async () => {
    const { clock, WS, client, events } = setup({ random: randoms(0.25) });
    client.start();
    WS.instances[0].accept({ epoch: 'E1', seq: 4, incidents: [inc('a', 1)] });
    WS.instances[0].send({ type: 'update', sub: 'default', epoch: 'E1', seq: 9, incident: inc('a', 2) });
    WS.instances[0].serverClose(1001, 'server shutting down');
    const st = of(events, 'state').at(-1);
    assert.equal(st.state, 'reconnecting');
    assert.equal(st.delayMs, Math.floor(0.25 * 501), 'attempt 0: within [0, base]');
    await clock.advance(st.delayMs - 1);
    assert.equal(WS.instances.length, 1, 'not before the delay');
    await clock.advance(1);
    assert.equal(WS.instances.length, 2);
    const q = WS.instances[1].query;
    assert.equal(q.get('since'), '9');
    assert.equal(q.get('epoch'), 'E1');
    assert.equal(q.get('components'), 'playback');
    // The server replays what was missed; an overlap is dropped by seq.
    WS.instances[1].open();
    WS.instances[1].send({ type: 'welcome', epoch: 'E1', seq: 12, heartbeat_s: 25 });
    WS.instances[1].send({ type: 'update', sub: 'default', epoch: 'E1', seq: 9, incident: inc('a', 2) });
    const resolved = inc('a', 3, { status: 'resolved' });
    WS.instances[1].send({ type: 'update', sub: 'default', epoch: 'E1', seq: 12, incident: resolved });
    assert.equal(client.incidents.length, 0);
    assert.equal(of(events, 'update').length, 2);
    assert.equal(client.state, 'open');
});

test('client: backoff grows while connects fail and resets after a stable connection', async () => {
    const { clock, WS, client, events } = setup({ random: () => 0.9999999, options: { fallbackAfter: 100 } });
    client.start();
    const delays = [];
    for (let i = 0; i < 4; i++) {
        WS.instances.at(-1).refuse();
        const d = of(events, 'state').at(-1).delayMs;
        delays.push(d);
        await clock.advance(d);
    }
    assert.deepEqual(delays, [500, 1000, 2000, 4000]);
    WS.instances.at(-1).accept({});
    await clock.advance(10000); // stableMs; heartbeats keep it alive meanwhile
    WS.instances.at(-1).serverClose(1013, 'too slow, resume with since');
    assert.equal(of(events, 'state').at(-1).delayMs, 500, 'reset to attempt 0');
});

test('client: a connection that flaps before stableMs keeps backing off', async () => {
    const { clock, WS, client, events } = setup({ random: () => 0.9999999 });
    client.start();
    const delays = [];
    for (let i = 0; i < 3; i++) {
        WS.instances.at(-1).accept({});
        await clock.advance(1000);
        WS.instances.at(-1).serverClose(1013);
        const d = of(events, 'state').at(-1).delayMs;
        delays.push(d);
        await clock.advance(d);
    }
    assert.deepEqual(delays, [500, 1000, 2000]);
    assert.equal(client.transport, 'ws', 'a welcomed connection is no failure: no fallback');
});

test('client: no message within 2.5 heartbeats closes and reconnects; heartbeats keep it alive', async () => {
    const { clock, WS, client } = setup();
    client.start();
    const ws = WS.instances[0];
    ws.accept({ epoch: 'E1', seq: 3, heartbeat_s: 10 });
    await clock.advance(20000);
    ws.send({ type: 'heartbeat', epoch: 'E1', seq: 8 });
    await clock.advance(24999);
    assert.equal(ws.closedByClient, null, 'alive: a heartbeat came 25 s ago');
    await clock.advance(1);
    assert.equal(ws.closedByClient, 1000, 'closed after 25 s of silence');
    assert.equal(client.state, 'reconnecting');
    await clock.advance(1000);
    assert.equal(WS.instances.length, 2);
    assert.equal(WS.instances[1].query.get('since'), '8', 'the heartbeat moved the cursor');
});

test('client: a handshake that never welcomes times out as a failure', async () => {
    const { clock, WS, client } = setup({ options: { openTimeoutMs: 3000 } });
    client.start();
    WS.instances[0].open();
    await clock.advance(3000);
    assert.equal(WS.instances[0].closedByClient, 1000);
    assert.equal(client.state, 'reconnecting');
});

test('client: falls back to SSE after N failed WebSocket connects, resuming with since/epoch', async () => {
    const { clock, WS, ES, client, events } = setup({ options: { fallbackAfter: 3 } });
    client.start();
    // It worked once: there is a cursor to resume from.
    WS.instances[0].accept({ epoch: 'E1', seq: 4, incidents: [inc('a', 1)] });
    WS.instances[0].serverClose(1006);
    for (let i = 0; i < 3; i++) {
        await clock.advance(60000);
        WS.instances.at(-1).refuse();
    }
    assert.equal(ES.instances.length, 1, 'the third failure in a row moves to SSE');
    const es = ES.instances[0];
    assert.equal(es.url, 'https://status.example.com/base/v1/events?components=playback&min_impact=minor&since=4&epoch=E1');
    es.open();
    assert.equal(client.transport, 'sse');
    assert.equal(client.state, 'open');
    es.emit('update', { epoch: 'E1', seq: 5, incident: inc('a', 2, { status: 'monitoring' }) });
    assert.equal(client.incidents[0].status, 'monitoring');
    assert.equal(of(events, 'update').at(-1).transport, 'sse');
    // A dropped stream is reopened by us, with backoff, from our cursor.
    es.fail(false);
    assert.equal(es.closed, true);
    await clock.advance(1000);
    assert.equal(ES.instances.length, 2);
    assert.equal(ES.instances[1].query.get('since'), '5');
    client.close();
});

test('client: falls back to polling when SSE fails too; ETag makes polls conditional', async () => {
    const etag = '"E1:7"';
    const fetch = makeFetch((url, init, n) => {
        if (n === 1) {
            return new Error('network');
        }
        if (init.headers['If-None-Match'] === etag) {
            return { status: 304 };
        }
        return { status: 200, etag, body: { epoch: 'E1', seq: 7, incidents: [inc('a', 1)] } };
    });
    const { clock, WS, ES, client, events } = setup({ fetch, options: { fallbackAfter: 2, pollIntervalMs: 15000 } });
    client.start();
    for (let i = 0; i < 2; i++) {
        WS.instances.at(-1).refuse();
        await clock.advance(60000);
    }
    assert.equal(ES.instances.length, 1);
    ES.instances[0].fail(true);
    await clock.advance(60000);
    ES.instances[1].fail(true);
    await clock.advance(0);
    assert.equal(fetch.calls.length, 1, 'polling started');
    assert.equal(fetch.calls[0].url, 'https://status.example.com/base/v1/incidents?components=playback&min_impact=minor');
    assert.equal(client.state, 'reconnecting', 'first poll failed: backoff');
    await clock.advance(1000);
    assert.equal(fetch.calls.length, 2);
    assert.equal(client.transport, 'poll');
    assert.equal(client.state, 'open');
    assert.deepEqual(client.incidents.map((i) => i.incident_id), ['a']);
    assert.deepEqual(client.cursor, { epoch: 'E1', seq: 7 });
    await clock.advance(16500); // 15 s +- 10 %
    assert.equal(fetch.calls.length, 3);
    assert.equal(fetch.calls[2].init.headers['If-None-Match'], etag);
    assert.equal(of(events, 'change').length, 1, 'a 304 changes nothing');
    client.close();
});

test('client: from a fallback it probes WebSocket periodically and moves back up', async () => {
    const { clock, WS, ES, client } = setup({ options: { fallbackAfter: 1, upgradeIntervalMs: 60000 } });
    client.start();
    WS.instances[0].refuse();
    const es = ES.instances[0];
    es.open();
    es.emit('snapshot', { epoch: 'E1', seq: 3, incidents: [inc('a', 1)] });
    assert.equal(client.transport, 'sse');
    await clock.advance(60000);
    assert.equal(WS.instances.length, 2, 'a probe within the upgrade interval');
    // A failed probe changes nothing and is retried later.
    WS.instances[1].refuse();
    assert.equal(client.transport, 'sse');
    assert.equal(es.closed, false);
    await clock.advance(60000);
    const probe = WS.instances[2];
    assert.equal(probe.query.get('since'), '3');
    probe.open();
    probe.send({ type: 'welcome', epoch: 'E1', seq: 4, heartbeat_s: 25 });
    assert.equal(client.transport, 'ws');
    assert.equal(es.closed, true, 'SSE closed once WebSocket works');
    probe.send({ type: 'update', sub: 'default', epoch: 'E1', seq: 4, incident: inc('a', 2, { status: 'identified' }) });
    assert.equal(client.incidents[0].status, 'identified');
    client.close();
});

test('client: after an outage of everything, the first success below probes WebSocket at once', async () => {
    let up = false;
    const fetch = makeFetch(() =>
        up ? { status: 200, body: { epoch: 'E1', seq: 2, incidents: [inc('a', 1)] } } : new Error('down'),
    );
    const { clock, WS, ES, client } = setup({ fetch, options: { fallbackAfter: 1 } });
    client.start();
    WS.instances[0].refuse();
    ES.instances[0].fail(true);
    await clock.advance(0);
    assert.equal(client.transport, 'poll');
    await clock.advance(1000);
    assert.equal(client.state, 'reconnecting', 'the server is down: polls fail too');
    up = true;
    // The next poll (backoff <= 1 s) works, and a probe follows within
    // [0, 4 x base], not after upgradeIntervalMs.
    await clock.advance(3000);
    assert.equal(client.state, 'open');
    assert.equal(WS.instances.length, 2);
    WS.instances[1].open();
    WS.instances[1].send({ type: 'welcome', epoch: 'E1', seq: 2, heartbeat_s: 25 });
    assert.equal(client.transport, 'ws');
    const polls = fetch.calls.length;
    await clock.advance(60000);
    assert.equal(fetch.calls.length, polls, 'polling stopped');
    client.close();
});

test('client: a policy close (1008) is final: error event, state failed, no retry', async () => {
    const { clock, WS, client, events } = setup();
    client.start();
    WS.instances[0].open();
    WS.instances[0].send({ type: 'welcome', epoch: 'E1', seq: 1, heartbeat_s: 25 });
    WS.instances[0].send({ type: 'error', code: 'bad_filter', message: 'min_impact: unknown' });
    WS.instances[0].serverClose(1008, 'policy violation');
    assert.equal(client.state, 'failed');
    assert.equal(of(events, 'error').at(-1).fatal, true);
    await clock.advance(600000);
    assert.equal(WS.instances.length, 1);
    assert.equal(clock.timers.size, 0);
});

test('client: an update of another epoch resubscribes with the old cursor', async () => {
    const { clock, WS, client } = setup();
    client.start();
    WS.instances[0].accept({ epoch: 'E1', seq: 4, incidents: [inc('a', 1)] });
    WS.instances[0].send({ type: 'update', sub: 'default', epoch: 'E2', seq: 1, incident: inc('b', 1) });
    assert.equal(WS.instances[0].closedByClient, 1000);
    await clock.advance(1000);
    const ws = WS.instances[1];
    assert.equal(ws.query.get('epoch'), 'E1');
    ws.accept({ epoch: 'E2', seq: 1, incidents: [inc('b', 1)], reset: true });
    assert.deepEqual(client.incidents.map((i) => i.incident_id), ['b']);
    assert.deepEqual(client.cursor, { epoch: 'E2', seq: 1 });
});

test('client: a server without an epoch yet (history not loaded) cannot blank the set', async () => {
    const { WS, client } = setup();
    client.start();
    WS.instances[0].accept({ epoch: 'E1', seq: 4, incidents: [inc('a', 1)] });
    WS.instances[0].send({ type: 'snapshot', sub: 'default', epoch: '', seq: 0, reset: true, incidents: [] });
    assert.equal(client.incidents.length, 1);
    const real = { type: 'snapshot', sub: 'default', epoch: 'E1', seq: 4, reset: true, incidents: [inc('a', 1)] };
    WS.instances[0].send(real);
    assert.equal(client.incidents.length, 1);
});

test('client: close() stops sockets, timers and retries for good', async () => {
    const { clock, WS, ES, client, events } = setup({ options: { fallbackAfter: 1 } });
    client.start();
    WS.instances[0].refuse();
    ES.instances[0].open();
    client.close();
    assert.equal(ES.instances[0].closed, true);
    assert.equal(clock.timers.size, 0, 'no timer left behind');
    await clock.advance(3600000);
    assert.equal(WS.instances.length + ES.instances.length, 2);
    assert.equal(client.state, 'closed');
    assert.equal(of(events, 'state').at(-1).state, 'closed');
    client.start(); // no effect after close
    assert.equal(WS.instances.length, 1);
});

test('client: transports limits the choice; an empty choice throws', () => {
    const { ES, client } = setup({ options: { transports: ['sse'] } });
    client.start();
    assert.equal(ES.instances.length, 1);
    assert.throws(
        () => new TocsinClient({ url: 'http://h', transports: ['ws'], WebSocket: null, autoStart: false }),
        TypeError,
    );
    assert.throws(() => new TocsinClient({ autoStart: false }), TypeError);
    assert.throws(() => new TocsinClient({ url: 'ftp://h', autoStart: false }), TypeError);
    client.close();
});
