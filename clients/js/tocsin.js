// tocsin — SPDX-License-Identifier: MIT
//
// The tocsin client (DESIGN §3–4): keeps the set of active incidents that match
// a filter, live, over WebSocket (tocsin.v1), falling back to Server-Sent
// Events and then to polling GET /v1/incidents, and resuming from the last
// seq after every reconnect so nothing is missed or applied twice.
// An ES module without dependencies, for browsers and node >= 18 (pass a
// WebSocket / EventSource implementation where node has none). It renders
// nothing: banner.js is one view of it. The pure parts (backoff, filter query,
// the incident set, severity order) are exported for reuse and for unit tests.

export const SUBPROTOCOL = 'tocsin.v1';

/** Impacts from least to most severe (DESIGN §2). */
export const IMPACTS = Object.freeze(['none', 'minor', 'major', 'critical']);

/** Statuses that end an incident: it leaves the active set. */
export const ENDED_STATUSES = Object.freeze(['resolved', 'completed']);

/* Close codes the client treats as final: retrying cannot help, because the
 * server refused what this client asks for (its filter or its message). */
const FATAL_CLOSE_CODES = new Set([1008, 1009]);

const DEFAULTS = Object.freeze({
    transports: ['ws', 'sse', 'poll'],
    paths: { ws: '/v1/ws', events: '/v1/events', incidents: '/v1/incidents' },
    backoff: { baseMs: 500, capMs: 30000 },
    // A connection that stays up this long resets the backoff.
    stableMs: 10000,
    // Consecutive failed connects of one transport before the next is tried.
    fallbackAfter: 3,
    // No message for heartbeatFactor x heartbeat_s: the connection is dead.
    heartbeatFactor: 2.5,
    // Until welcome says otherwise (the server's default).
    heartbeatS: 25,
    // A WebSocket without a welcome by then, or an HTTP request without an
    // answer, counts as failed.
    openTimeoutMs: 10000,
    pollIntervalMs: 15000,
    // How often a fallback transport tries to go back up to WebSocket.
    upgradeIntervalMs: 60000,
    autoStart: true,
});

/* ------------------------------------------------------------ pure logic */

/**
 * Rank of an impact: 0 (none) to 3 (critical); an unknown impact ranks as
 * none, so a newer server's value never outranks a known one.
 */
export function impactRank(impact) {
    const i = IMPACTS.indexOf(impact);
    return i < 0 ? 0 : i;
}

/** True when the incident's status ends it (resolved, completed). */
export function isEnded(incident) {
    return incident != null && ENDED_STATUSES.includes(incident.status);
}

/**
 * Reconnect delay in ms with exponential backoff and FULL jitter: uniform in
 * [0, min(capMs, baseMs * 2^attempt)], so clients cut off together by an
 * outage come back spread over the whole window instead of in waves.
 * random() is Math.random's contract: [0, 1).
 */
export function backoffDelay(attempt, { baseMs = 500, capMs = 30000 } = {}, random = Math.random) {
    const n = Math.max(0, Math.min(Number(attempt) || 0, 52));
    const ceiling = Math.min(capMs, baseMs * 2 ** n);
    return Math.floor(random() * (ceiling + 1));
}

function listOf(v, key) {
    if (v == null || v === '') {
        return [];
    }
    const items = typeof v === 'string' ? v.split(',') : v;
    if (!Array.isArray(items)) {
        throw new TypeError(`filter.${key}: an array of strings or a comma-separated string`);
    }
    return items.map((s) => String(s).trim()).filter((s) => s !== '');
}

/**
 * Normalises a filter ({components, regions, min_impact}; minImpact is
 * accepted too; lists may be arrays or comma-separated strings) into
 * {components: string[], regions: string[], min_impact: string|null}.
 * Throws TypeError on a malformed filter, so a typo fails at once rather
 * than as a 1008 close from the server.
 */
export function normalizeFilter(filter = {}) {
    const f = filter || {};
    const min = f.min_impact ?? f.minImpact ?? null;
    if (min != null && min !== '' && !IMPACTS.includes(min)) {
        throw new TypeError(`filter.min_impact: one of ${IMPACTS.join(', ')}`);
    }
    return {
        components: listOf(f.components, 'components'),
        regions: listOf(f.regions, 'regions'),
        min_impact: min || null,
    };
}

/** The filter as a query string (DESIGN §3): components=a,b&regions=r&min_impact=minor. */
export function filterQuery(filter) {
    const f = normalizeFilter(filter);
    const parts = [];
    if (f.components.length) {
        parts.push('components=' + f.components.map(encodeURIComponent).join(','));
    }
    if (f.regions.length) {
        parts.push('regions=' + f.regions.map(encodeURIComponent).join(','));
    }
    if (f.min_impact) {
        parts.push('min_impact=' + f.min_impact);
    }
    return parts.join('&');
}

/** The resume part of a query string: since=<seq>&epoch=<epoch>, or '' without a cursor. */
export function resumeQuery(cursor) {
    if (!cursor || cursor.epoch == null || cursor.seq == null) {
        return '';
    }
    return `since=${cursor.seq}&epoch=${encodeURIComponent(cursor.epoch)}`;
}

function timeOf(s) {
    const t = Date.parse(s);
    return Number.isNaN(t) ? -Infinity : t;
}

/**
 * Severity order for sort(): most severe impact first; on a tie the most
 * recently updated first; then by incident_id, so the order is stable.
 */
export function compareSeverity(a, b) {
    return (
        impactRank(b.impact) - impactRank(a.impact) ||
        timeOf(b.updated_at ?? b.occurred_at) - timeOf(a.updated_at ?? a.occurred_at) ||
        String(a.incident_id).localeCompare(String(b.incident_id))
    );
}

/** The most severe incident of a list (compareSeverity), or null for an empty list. */
export function mostSevere(incidents) {
    let best = null;
    for (const inc of incidents) {
        if (best === null || compareSeverity(inc, best) < 0) {
            best = inc;
        }
    }
    return best;
}

/**
 * The set of active incidents of one subscription and its cursor (epoch and
 * the last seq applied). Pure: the client feeds it server messages; each
 * apply* says whether the set changed.
 */
export class IncidentSet {
    constructor() {
        this.epoch = null;
        this.seq = null;
        this.map = new Map();
    }

    /** {epoch, seq} to resume from, or null before the first snapshot. */
    get cursor() {
        if (this.epoch === null || this.seq === null) {
            return null;
        }
        return { epoch: this.epoch, seq: this.seq };
    }

    get size() {
        return this.map.size;
    }

    /** The active incidents, most severe first. */
    list() {
        return [...this.map.values()].sort(compareSeverity);
    }

    get(id) {
        return this.map.get(id);
    }

    /**
     * A snapshot (or a polled GET /v1/incidents body) replaces the set: it is
     * the server's whole truth at its seq, whatever was held before (a reset
     * snapshot may even move seq back, e.g. after the server lost history).
     * @returns {boolean} true when the set differs from before.
     */
    applySnapshot(msg) {
        const next = new Map();
        for (const inc of msg.incidents || []) {
            if (inc && typeof inc.incident_id === 'string' && !isEnded(inc)) {
                next.set(inc.incident_id, inc);
            }
        }
        const changed = !sameIncidents(this.map, next);
        this.map = next;
        this.epoch = msg.epoch;
        this.seq = msg.seq;
        return changed;
    }

    /**
     * One update, in seq order. Results:
     *  'applied'   the set changed;
     *  'unchanged' a new seq that changes nothing here (an older version, or
     *              the end of an incident never held);
     *  'duplicate' seq <= the last applied: already seen (replay overlap, a
     *              second transport), ignored;
     *  'resync'    a different epoch, or no snapshot yet: the caller must
     *              resubscribe (the server then sends a reset snapshot).
     */
    applyUpdate(msg) {
        if (this.epoch === null || msg.epoch !== this.epoch) {
            return 'resync';
        }
        if (!(msg.seq > this.seq)) {
            return 'duplicate';
        }
        this.seq = msg.seq;
        const inc = msg.incident;
        if (!inc || typeof inc.incident_id !== 'string') {
            return 'unchanged';
        }
        const cur = this.map.get(inc.incident_id);
        // Versions only grow (DESIGN §8.3); an older one is never shown.
        if (cur && typeof inc.version === 'number' && inc.version <= cur.version) {
            return 'unchanged';
        }
        if (isEnded(inc)) {
            return this.map.delete(inc.incident_id) ? 'applied' : 'unchanged';
        }
        this.map.set(inc.incident_id, inc);
        return 'applied';
    }

    /**
     * A heartbeat's seq: the server sends it only once everything before it
     * has been queued to this session, so the cursor may move up to it, and
     * a resume after a long quiet spell replays nothing instead of falling
     * past the replay cap into a reset.
     */
    advance(epoch, seq) {
        if (epoch === this.epoch && this.seq !== null && seq > this.seq) {
            this.seq = seq;
        }
    }
}

function sameIncidents(a, b) {
    if (a.size !== b.size) {
        return false;
    }
    for (const [id, inc] of a) {
        const other = b.get(id);
        if (!other || other.version !== inc.version) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------ the client */

/** The events a TocsinClient dispatches carry their data in .detail. */
export class TocsinEvent extends Event {
    constructor(type, detail) {
        super(type);
        this.detail = detail;
    }
}

function httpBase(url) {
    const loc = globalThis.location && globalThis.location.href;
    const u = new URL(url, loc);
    if (u.protocol === 'ws:' || u.protocol === 'wss:') {
        u.protocol = u.protocol === 'ws:' ? 'http:' : 'https:';
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new TypeError(`url: http(s) or ws(s), not ${u.protocol}`);
    }
    u.search = '';
    u.hash = '';
    return u;
}

/**
 * A live view of the active incidents matching a filter. See README.md for
 * the options, events and the transport policy.
 */
export class TocsinClient extends EventTarget {
    #o;
    #set = new IncidentSet();
    #base;
    #basePath;
    #query;
    #state = 'idle';
    #transport = null;
    #level = 0; // index into #o.transports: the transport in use
    #failures = 0; // consecutive failed connects of that transport
    #attempt = 0; // backoff exponent
    #conn = null;
    #probe = null;
    #retryTimer = null;
    #upgradeTimer = null;
    #closed = false;
    #started = false;
    #quickProbe = false; // probe up as soon as the fallback works
    #onOnline = null;

    constructor(options = {}) {
        super();
        if (!options.url) {
            throw new TypeError('TocsinClient: options.url is required');
        }
        const o = {
            ...DEFAULTS,
            ...options,
            paths: { ...DEFAULTS.paths, ...(options.paths || {}) },
            backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) },
        };
        o.WebSocket = options.WebSocket ?? globalThis.WebSocket;
        o.EventSource = options.EventSource ?? globalThis.EventSource;
        o.fetch = options.fetch ?? (globalThis.fetch && globalThis.fetch.bind(globalThis));
        o.setTimeout = options.setTimeout ?? globalThis.setTimeout.bind(globalThis);
        o.clearTimeout = options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
        o.random = options.random ?? Math.random;
        // Transports this runtime lacks are left out, so the order still holds.
        const have = { ws: !!o.WebSocket, sse: !!o.EventSource, poll: !!o.fetch };
        o.transports = o.transports.filter((t) => have[t]);
        if (o.transports.length === 0) {
            throw new TypeError('TocsinClient: no transport (WebSocket, EventSource, fetch)');
        }
        this.#o = o;
        this.#base = httpBase(o.url);
        // A path prefix (tocsind behind a reverse proxy) is kept; '/' is none.
        this.#basePath = this.#base.pathname.replace(/\/+$/, '');
        this.#query = filterQuery(o.filter);
        for (const [name, type] of [
            ['onSnapshot', 'snapshot'],
            ['onUpdate', 'update'],
            ['onChange', 'change'],
            ['onState', 'state'],
            ['onError', 'error'],
        ]) {
            if (typeof o[name] === 'function') {
                this.addEventListener(type, (e) => o[name](e.detail));
            }
        }
        if (o.autoStart) {
            // Not now: listeners added right after construction see everything.
            queueMicrotask(() => this.start());
        }
    }

    /** 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed' | 'failed'. */
    get state() {
        return this.#state;
    }

    /** 'ws' | 'sse' | 'poll' while one is in use, else null. */
    get transport() {
        return this.#transport;
    }

    /** The active matching incidents, most severe first. */
    get incidents() {
        return this.#set.list();
    }

    /** {epoch, seq} the next connection resumes from, or null. */
    get cursor() {
        return this.#set.cursor;
    }

    /** Starts connecting (done by the constructor unless autoStart is false). */
    start() {
        if (this.#started || this.#closed) {
            return this;
        }
        this.#started = true;
        if (typeof globalThis.addEventListener === 'function') {
            // Back online: retry now instead of at the end of a long backoff.
            this.#onOnline = () => {
                if (this.#retryTimer !== null) {
                    this.#clearRetry();
                    this.#connect();
                }
            };
            globalThis.addEventListener('online', this.#onOnline);
        }
        this.#connect();
        return this;
    }

    /** Stops everything: connections, timers, retries. Final. */
    close() {
        if (!this.#closed) {
            this.#shutdown();
            this.#setState('closed', null);
        }
    }

    /* ---- plumbing */

    #shutdown() {
        this.#closed = true;
        this.#clearRetry();
        this.#clearUpgrade();
        this.#drop(this.#conn);
        this.#drop(this.#probe);
        this.#conn = this.#probe = null;
        if (this.#onOnline) {
            globalThis.removeEventListener('online', this.#onOnline);
            this.#onOnline = null;
        }
    }

    #emit(type, detail) {
        this.dispatchEvent(new TocsinEvent(type, detail));
    }

    #setState(state, transport, extra = {}) {
        if (state === this.#state && transport === this.#transport && !extra.delayMs) {
            return;
        }
        this.#state = state;
        this.#transport = transport;
        this.#emit('state', { state, transport, ...extra });
    }

    #timer(fn, ms) {
        return this.#o.setTimeout(fn, Math.max(0, ms));
    }

    #clearRetry() {
        if (this.#retryTimer !== null) {
            this.#o.clearTimeout(this.#retryTimer);
            this.#retryTimer = null;
        }
    }

    #clearUpgrade() {
        if (this.#upgradeTimer !== null) {
            this.#o.clearTimeout(this.#upgradeTimer);
            this.#upgradeTimer = null;
        }
    }

    #url(path, withResume) {
        const u = new URL(this.#base.href);
        u.pathname = this.#basePath + path;
        // A client token (tocsind's auth.client_secret) goes in the query:
        // browsers set no header on WebSocket or EventSource. A function is
        // asked on every connect, so a refreshed token is used on reconnect.
        const tok = typeof this.#o.token === 'function' ? this.#o.token() : this.#o.token;
        const q = [
            this.#query,
            withResume ? resumeQuery(this.#set.cursor) : '',
            tok ? 'token=' + encodeURIComponent(tok) : '',
        ]
            .filter(Boolean)
            .join('&');
        u.search = q ? '?' + q : '';
        return u;
    }

    #connect() {
        if (this.#closed) {
            return;
        }
        const t = this.#o.transports[this.#level];
        const first = this.#state === 'idle' || this.#state === 'connecting';
        this.#setState(first ? 'connecting' : 'reconnecting', t);
        if (t === 'ws') {
            this.#conn = this.#openWs(false);
        } else if (t === 'sse') {
            this.#conn = this.#openSse(false);
        } else {
            this.#conn = this.#openPoll();
        }
    }

    /* A connection ended (conn was current). fatal stops for good; failed
     * means it never worked, which counts towards falling back. */
    #lost(conn, { failed, fatal, error }) {
        this.#drop(conn);
        if (conn !== this.#conn || this.#closed) {
            return;
        }
        this.#conn = null;
        if (fatal) {
            this.#shutdown();
            this.#emit('error', { ...error, fatal: true });
            this.#setState('failed', null);
            return;
        }
        if (failed) {
            this.#failures++;
            const last = this.#o.transports.length - 1;
            if (this.#failures >= this.#o.fallbackAfter && this.#level < last) {
                this.#level++;
                this.#failures = 0;
                this.#attempt = 0;
                this.#quickProbe = true;
                this.#armUpgrade();
                this.#connect();
                return;
            }
        }
        const delayMs = backoffDelay(this.#attempt++, this.#o.backoff, this.#o.random);
        this.#setState('reconnecting', this.#o.transports[this.#level], { delayMs });
        this.#retryTimer = this.#timer(() => {
            this.#retryTimer = null;
            this.#connect();
        }, delayMs);
    }

    /* The connection works: reset the failure count, and the backoff once
     * it has stayed up for stableMs. */
    #working(conn) {
        if (conn !== this.#conn) {
            return;
        }
        this.#failures = 0;
        this.#setState('open', conn.kind);
        if (this.#quickProbe && this.#level > 0) {
            // The first success after falling back: the failures may have
            // been an outage of the whole server, not of the better
            // transport, so try that again now rather than after
            // upgradeIntervalMs (a little jitter: a crowd recovers together).
            this.#quickProbe = false;
            this.#armUpgrade(backoffDelay(2, this.#o.backoff, this.#o.random));
        }
        if (conn.stableTimer == null && conn.kind !== 'poll') {
            conn.stableTimer = this.#timer(() => {
                this.#attempt = 0;
            }, this.#o.stableMs);
        }
    }

    #drop(conn) {
        if (!conn || conn.dropped) {
            return;
        }
        conn.dropped = true;
        for (const k of ['openTimer', 'deadTimer', 'stableTimer', 'pollTimer']) {
            if (conn[k] != null) {
                this.#o.clearTimeout(conn[k]);
                conn[k] = null;
            }
        }
        conn.stop();
    }

    /* ---- messages, whatever the transport */

    #onMessage(conn, msg) {
        if (conn.dropped || conn.probe || !msg || typeof msg !== 'object') {
            return; // a probe's messages count once it has taken over
        }
        if (msg.sub !== undefined && msg.sub !== 'default') {
            return; // only the query-string subscription is ours
        }
        // Before a restarted server has loaded its history it has no epoch
        // yet and would offer an empty snapshot; the real one follows.
        if (msg.epoch === '') {
            return;
        }
        switch (msg.type) {
        case 'snapshot': {
            const changed = this.#set.applySnapshot(msg);
            this.#emit('snapshot', {
                incidents: this.#set.list(),
                reset: msg.reset === true,
                epoch: msg.epoch,
                seq: msg.seq,
                transport: conn.kind,
            });
            if (changed) {
                this.#emit('change', { incidents: this.#set.list() });
            }
            break;
        }
        case 'update': {
            const r = this.#set.applyUpdate(msg);
            if (r === 'resync') {
                // Another epoch: our seqs mean nothing now. Resubscribing
                // with the old cursor gets a reset snapshot.
                this.#lost(conn, { failed: false });
                return;
            }
            if (r === 'duplicate') {
                return;
            }
            this.#emit('update', {
                incident: msg.incident,
                epoch: msg.epoch,
                seq: msg.seq,
                transport: conn.kind,
            });
            if (r === 'applied') {
                this.#emit('change', { incidents: this.#set.list() });
            }
            break;
        }
        case 'heartbeat':
            this.#set.advance(msg.epoch, msg.seq);
            break;
        case 'error':
            this.#emit('error', { code: msg.code, message: msg.message, fatal: false });
            break;
        default:
            break; // welcome is handled by the WebSocket; unknown types are ignored
        }
    }

    /* ---- WebSocket */

    #openWs(probe) {
        const url = this.#url(this.#o.paths.ws, true);
        url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
        const conn = { kind: 'ws', probe, welcomed: false, heartbeatMs: this.#o.heartbeatS * 1000 };
        let ws;
        try {
            ws = new this.#o.WebSocket(url.href, SUBPROTOCOL);
        } catch (e) {
            conn.stop = () => {};
            // Fail on the next turn, as a refused connection would.
            conn.openTimer = this.#timer(() => this.#wsClosed(conn, 1006, String(e)), 0);
            return conn;
        }
        conn.stop = () => {
            ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
            try {
                ws.close(1000);
            } catch {
                // already closing
            }
        };
        conn.openTimer = this.#timer(
            () => this.#wsClosed(conn, 1006, 'no welcome'),
            this.#o.openTimeoutMs,
        );
        ws.onmessage = (ev) => {
            let msg;
            try {
                msg = JSON.parse(ev.data);
            } catch {
                return;
            }
            this.#armDead(conn);
            if (msg && msg.type === 'welcome') {
                this.#wsWelcome(conn, msg);
                return;
            }
            this.#onMessage(conn, msg);
        };
        ws.onclose = (ev) => this.#wsClosed(conn, ev.code, ev.reason);
        ws.onerror = () => {}; // a close event follows with the code
        return conn;
    }

    /* Any message proves the connection alive; silence for heartbeatFactor
     * heartbeats means a dead peer or path (TCP may take minutes to say so). */
    #armDead(conn) {
        if (conn.deadTimer != null) {
            this.#o.clearTimeout(conn.deadTimer);
        }
        const ms = conn.heartbeatMs * this.#o.heartbeatFactor;
        conn.deadTimer = this.#timer(() => {
            conn.deadTimer = null;
            this.#wsClosed(conn, 4000, 'no heartbeat');
        }, ms);
    }

    #wsWelcome(conn, msg) {
        if (conn.welcomed) {
            return;
        }
        conn.welcomed = true;
        if (conn.openTimer != null) {
            this.#o.clearTimeout(conn.openTimer);
            conn.openTimer = null;
        }
        if (typeof msg.heartbeat_s === 'number' && msg.heartbeat_s > 0) {
            conn.heartbeatMs = msg.heartbeat_s * 1000;
            this.#armDead(conn);
        }
        if (conn.probe) {
            this.#promote(conn);
        }
        this.#working(conn);
    }

    #wsClosed(conn, code, reason) {
        if (conn.dropped) {
            return;
        }
        if (conn === this.#probe) {
            this.#probeFailed(conn);
            return;
        }
        const fatal = FATAL_CLOSE_CODES.has(code);
        this.#lost(conn, {
            failed: !conn.welcomed,
            fatal,
            error: { code: `close_${code}`, message: reason || `closed with ${code}` },
        });
    }

    /* ---- Server-Sent Events */

    /* EventSource reconnects by itself every few seconds with Last-Event-ID,
     * but without backoff or jitter: a whole audience would come back in
     * step. So on any error it is closed and reopened here, with backoff, and
     * the resume point goes in ?since=&epoch= (tocsind takes those as it
     * takes Last-Event-ID; a new EventSource cannot set headers). */
    #openSse(probe) {
        const url = this.#url(this.#o.paths.events, true);
        const conn = { kind: 'sse', probe, opened: false };
        let es;
        try {
            es = new this.#o.EventSource(url.href);
        } catch (e) {
            conn.stop = () => {};
            conn.openTimer = this.#timer(() => this.#sseError(conn), 0);
            return conn;
        }
        conn.stop = () => {
            es.onopen = es.onerror = null;
            es.close();
        };
        conn.openTimer = this.#timer(() => this.#sseError(conn), this.#o.openTimeoutMs);
        es.onopen = () => {
            if (conn.opened || conn.dropped) {
                return;
            }
            conn.opened = true;
            this.#o.clearTimeout(conn.openTimer);
            conn.openTimer = null;
            if (conn.probe) {
                this.#promote(conn);
            }
            this.#working(conn);
        };
        const onEvent = (ev) => {
            let msg;
            try {
                msg = JSON.parse(ev.data);
            } catch {
                return;
            }
            this.#onMessage(conn, msg);
        };
        es.addEventListener('snapshot', onEvent);
        es.addEventListener('update', onEvent);
        es.onerror = () => this.#sseError(conn);
        return conn;
    }

    #sseError(conn) {
        if (conn.dropped) {
            return;
        }
        if (conn === this.#probe) {
            this.#probeFailed(conn);
            return;
        }
        this.#lost(conn, { failed: !conn.opened });
    }

    /* ---- polling GET /v1/incidents */

    #openPoll() {
        const conn = { kind: 'poll', etag: null, controller: null };
        conn.stop = () => {
            if (conn.controller) {
                conn.controller.abort();
            }
        };
        conn.pollTimer = this.#timer(() => this.#pollOnce(conn), 0);
        return conn;
    }

    async #pollOnce(conn) {
        conn.pollTimer = null;
        const url = this.#url(this.#o.paths.incidents, false);
        const init = { headers: {} };
        if (conn.etag) {
            // Readable only same-origin (or with Access-Control-Expose-Headers);
            // cross-origin the browser's cache revalidates instead (no-cache).
            init.headers['If-None-Match'] = conn.etag;
        } else {
            init.cache = 'no-cache';
        }
        let ok = false;
        const Ctl = globalThis.AbortController;
        conn.controller = Ctl ? new Ctl() : null;
        if (conn.controller) {
            init.signal = conn.controller.signal;
        }
        const timeout = this.#timer(
            () => conn.controller && conn.controller.abort(),
            this.#o.openTimeoutMs,
        );
        try {
            const res = await this.#o.fetch(url.href, init);
            if (res.status === 304) {
                ok = true;
            } else if (res.ok) {
                const body = await res.json();
                ok = true;
                conn.etag = res.headers.get('etag');
                const cur = this.#set.cursor;
                const stale = cur && body.epoch === cur.epoch && body.seq <= cur.seq;
                if (!conn.dropped && !stale) {
                    this.#onMessage(conn, { ...body, type: 'snapshot' });
                }
            }
        } catch {
            ok = false;
        } finally {
            this.#o.clearTimeout(timeout);
            conn.controller = null;
        }
        if (conn.dropped) {
            return;
        }
        if (!ok) {
            // Polling is the last resort: it keeps trying, with backoff.
            this.#failures++;
            const delayMs = backoffDelay(this.#attempt++, this.#o.backoff, this.#o.random);
            this.#setState('reconnecting', 'poll', { delayMs });
            conn.pollTimer = this.#timer(() => this.#pollOnce(conn), delayMs);
            return;
        }
        this.#attempt = 0;
        this.#working(conn);
        // +-10 %: pollers started together drift apart.
        const every = this.#o.pollIntervalMs * (0.9 + 0.2 * this.#o.random());
        conn.pollTimer = this.#timer(() => this.#pollOnce(conn), every);
    }

    /* ---- going back up */

    /* On a fallback transport, every upgradeIntervalMs (jittered into its
     * second half) a better transport is tried beside the current one, and
     * takes over once it works (welcome, or an open stream). It resumes from
     * the cursor of the moment it was opened, so nothing is missed, and what
     * the old one delivered meanwhile is dropped by the seq check. */
    #armUpgrade(ms = this.#o.upgradeIntervalMs * (0.5 + 0.5 * this.#o.random())) {
        this.#clearUpgrade();
        if (this.#closed || this.#level === 0) {
            return;
        }
        this.#upgradeTimer = this.#timer(() => {
            this.#upgradeTimer = null;
            if (this.#probe === null) {
                this.#tryUp(0);
            }
        }, ms);
    }

    /* Probes the transports above the current one, best first, one at a time. */
    #tryUp(level) {
        if (this.#closed || level >= this.#level) {
            this.#armUpgrade();
            return;
        }
        const t = this.#o.transports[level];
        if (t === 'poll') {
            this.#armUpgrade();
            return;
        }
        const probe = t === 'ws' ? this.#openWs(true) : this.#openSse(true);
        probe.level = level;
        this.#probe = probe;
    }

    #probeFailed(probe) {
        this.#drop(probe);
        if (this.#probe === probe) {
            this.#probe = null;
            this.#tryUp(probe.level + 1);
        }
    }

    #promote(probe) {
        this.#probe = null;
        probe.probe = false;
        const old = this.#conn;
        this.#conn = probe;
        this.#drop(old);
        this.#clearRetry();
        this.#level = probe.level;
        this.#failures = 0;
        this.#attempt = 0;
        this.#quickProbe = false;
        this.#armUpgrade();
    }
}
