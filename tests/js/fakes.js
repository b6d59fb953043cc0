// tocsin — SPDX-License-Identifier: MIT
//
// Test doubles for the client's unit tests: incident states, a manual clock
// (timers run only when a test advances time), and WebSocket, EventSource
// and fetch fakes the test drives from the "server" side. No network, no
// real time.

/** An incident state as tocsind sends it (DESIGN §4), minor and investigating unless told. */
export function incident(id, version, extra = {}) {
    return {
        incident_id: id,
        version,
        status: 'investigating',
        impact: 'minor',
        title: `${id} v${version}`,
        message: 'msg',
        components: ['playback'],
        started_at: '2026-11-25T08:00:00Z',
        updated_at: '2026-11-25T08:00:00Z',
        ...extra,
    };
}

export class FakeClock {
    constructor() {
        this.now = 0;
        this.nextId = 1;
        this.timers = new Map(); // id -> {at, fn}
        this.setTimeout = (fn, ms) => {
            const id = this.nextId++;
            this.timers.set(id, { at: this.now + Math.max(0, ms), fn });
            return id;
        };
        this.clearTimeout = (id) => {
            this.timers.delete(id);
        };
    }

    /** Runs every timer due within ms, in time order (timers set meanwhile too). */
    async advance(ms) {
        const end = this.now + ms;
        for (;;) {
            let next = null;
            for (const [id, t] of this.timers) {
                const earlier = next === null || t.at < next[1].at || (t.at === next[1].at && id < next[0]);
                if (t.at <= end && earlier) {
                    next = [id, t];
                }
            }
            if (next === null) {
                break;
            }
            this.timers.delete(next[0]);
            this.now = next[1].at;
            next[1].fn();
            await flush();
        }
        this.now = end;
        await flush();
    }

    /** Delays of the pending timers, sorted. */
    pending() {
        return [...this.timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
    }
}

/** Lets promise callbacks (the poller's awaits) run. */
export async function flush() {
    for (let i = 0; i < 10; i++) {
        await Promise.resolve();
    }
}

/** A sequence of random() values, then 0.5 forever. */
export function randoms(...values) {
    let i = 0;
    return () => (i < values.length ? values[i++] : 0.5);
}

export function makeWebSocket() {
    class FakeWebSocket {
        static instances = [];

        constructor(url, protocol) {
            this.url = url;
            this.protocol = protocol;
            this.readyState = 0;
            this.closedByClient = null;
            this.onopen = this.onmessage = this.onclose = this.onerror = null;
            FakeWebSocket.instances.push(this);
        }

        get query() {
            return new URL(this.url).searchParams;
        }

        close(code) {
            this.closedByClient = code ?? 1005;
            this.readyState = 3;
        }

        // ---- the server side
        open() {
            this.readyState = 1;
            this.onopen?.({});
        }

        send(msg) {
            this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
        }

        /** Welcome and snapshot, as tocsind sends them on connect. */
        accept({ epoch = 'E1', seq = 0, incidents = [], heartbeat_s = 25, reset } = {}) {
            this.open();
            this.send({ type: 'welcome', epoch, seq, heartbeat_s });
            const snap = { type: 'snapshot', sub: 'default', epoch, seq, incidents };
            if (reset) {
                snap.reset = true;
            }
            this.send(snap);
        }

        serverClose(code = 1006, reason = '') {
            this.readyState = 3;
            this.onclose?.({ code, reason });
        }

        /** A failed handshake: error, then close 1006, never open. */
        refuse() {
            this.onerror?.({});
            this.serverClose(1006);
        }
    }
    return FakeWebSocket;
}

export function makeEventSource() {
    class FakeEventSource {
        static instances = [];

        constructor(url) {
            this.url = url;
            this.readyState = 0;
            this.listeners = {};
            this.closed = false;
            this.onopen = this.onerror = null;
            FakeEventSource.instances.push(this);
        }

        get query() {
            return new URL(this.url).searchParams;
        }

        addEventListener(type, fn) {
            (this.listeners[type] ||= []).push(fn);
        }

        close() {
            this.closed = true;
            this.readyState = 2;
        }

        // ---- the server side
        open() {
            this.readyState = 1;
            this.onopen?.({});
        }

        emit(type, msg) {
            const id = `${msg.epoch}:${msg.seq}`;
            for (const fn of this.listeners[type] || []) {
                fn({ type, data: JSON.stringify({ type, sub: 'default', ...msg }), lastEventId: id });
            }
        }

        fail(closed = true) {
            this.readyState = closed ? 2 : 0;
            this.onerror?.({});
        }
    }
    return FakeEventSource;
}

/** fetch driven by a handler(url, init) -> {status, body, etag} | Error. */
export function makeFetch(handler) {
    const calls = [];
    const fetch = async (url, init = {}) => {
        calls.push({ url, init });
        const r = await handler(url, init, calls.length);
        if (r instanceof Error) {
            throw r;
        }
        const headers = new Map(Object.entries(r.etag ? { etag: r.etag } : {}));
        return {
            status: r.status,
            ok: r.status >= 200 && r.status < 300,
            headers: { get: (k) => headers.get(k.toLowerCase()) ?? null },
            json: async () => r.body,
        };
    };
    fetch.calls = calls;
    return fetch;
}
