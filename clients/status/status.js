// tocsin — SPDX-License-Identifier: MIT
//
// The status page tocsind serves at / (index.html): the overall state, the
// components and their state, active incidents with their timelines, recent
// history and a subscribe-by-email form. Live through TocsinClient
// (WebSocket, then SSE, then polling); timelines come from
// GET /v1/incidents/{id}. Everything from an event goes in as text.
// Recent history comes from GET /v1/history (the last ended incidents that
// match), then grows as incidents end. ?components=a,b narrows the page.

import { TocsinClient, filterQuery, isEnded, mostSevere, normalizeFilter } from './tocsin.js';
import { IMPACT_LABELS, formatStarted, incidentLink, statusLabel } from './banner.js';

/** Component states, least to most severe (DESIGN §2 component_status). */
export const COMPONENT_STATES = Object.freeze([
    'operational',
    'under_maintenance',
    'degraded_performance',
    'partial_outage',
    'major_outage',
]);

const STATE_LABELS = {
    operational: 'Operational',
    under_maintenance: 'Under maintenance',
    degraded_performance: 'Degraded performance',
    partial_outage: 'Partial outage',
    major_outage: 'Major outage',
};

/* Without a component_status entry, a component's state follows the impact. */
const STATE_OF_IMPACT = {
    none: 'operational',
    minor: 'degraded_performance',
    major: 'partial_outage',
    critical: 'major_outage',
};

const HISTORY_MAX = 20;

/** A component's state in one incident: its component_status entry, else derived. */
export function componentState(incident, component) {
    const cs = incident.component_status;
    if (cs && typeof cs === 'object' && COMPONENT_STATES.includes(cs[component])) {
        return cs[component];
    }
    if (incident.kind === 'maintenance') {
        return incident.status === 'scheduled' ? 'operational' : 'under_maintenance';
    }
    return STATE_OF_IMPACT[incident.impact] ?? 'operational';
}

/**
 * Component id → state, the worst over the active incidents (DESIGN §2).
 * known: components to list even when no incident names them; only (a
 * non-empty) `only` are listed when given.
 */
export function componentStates(active, known = [], only = []) {
    const out = new Map(known.map((c) => [c, 'operational']));
    const rank = (s) => COMPONENT_STATES.indexOf(s);
    for (const inc of active) {
        const named = Object.keys(inc.component_status || {});
        const ids = new Set([...(inc.components || []), ...named]);
        for (const c of ids) {
            const s = componentState(inc, c);
            if (!out.has(c) || rank(s) > rank(out.get(c))) {
                out.set(c, s);
            }
        }
    }
    const keep = only.length ? [...out].filter(([c]) => only.includes(c)) : [...out];
    return new Map(keep.sort(([a], [b]) => a.localeCompare(b)));
}

/** The page's headline: {level, text}. */
export function overallState(active) {
    const outages = active.filter((i) => i.kind !== 'maintenance');
    if (outages.length) {
        const worst = mostSevere(outages).impact;
        const level = Object.hasOwn(IMPACT_LABELS, worst) ? worst : 'none';
        return { level, text: IMPACT_LABELS[level] };
    }
    if (active.some((i) => i.status !== 'scheduled')) {
        return { level: 'maintenance', text: 'Maintenance in progress' };
    }
    return { level: 'operational', text: 'All systems operational' };
}

/* ------------------------------------------------------------- the page */

const $ = (id) => document.getElementById(id);

/* An element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
        if (v != null && v !== false) {
            e.setAttribute(k, v);
        }
    }
    e.append(...children.filter((c) => c != null && c !== ''));
    return e;
}

function time(iso) {
    const t = formatStarted(iso);
    return t.text ? h('time', { datetime: t.datetime }, t.text) : null;
}

const params = new URLSearchParams(location.search);
const filter = normalizeFilter({ components: params.get('components') || '' });
const base = new URL('.', location.href); // keeps a reverse proxy's path prefix
const timelines = new Map(); // incident id → updates, newest first
const history = new Map(); // incident id → its final state
const loading = new Map(); // incident id → {again} while a fetch runs
const seen = new Set(filter.components); // every component the page heard of
let active = [];
let synced = false; // the first snapshot arrived: the headline may speak

function matches(inc) {
    const comps = inc.components || [];
    return !filter.components.length || comps.some((c) => filter.components.includes(c));
}

function addHistory(inc) {
    if (!matches(inc)) {
        return;
    }
    history.set(inc.incident_id, inc);
    (inc.components || []).forEach((c) => seen.add(c));
}

/* GET /v1/incidents/{id}: its state and its updates. One fetch per incident
 * at a time; an update meanwhile asks for one more round. */
async function load(id) {
    if (loading.has(id)) {
        loading.get(id).again = true;
        return;
    }
    const job = { again: true };
    loading.set(id, job);
    try {
        while (job.again) {
            job.again = false;
            const url = new URL('v1/incidents/' + encodeURIComponent(id), base);
            const res = await fetch(url, { cache: 'no-cache' });
            if (!res.ok) {
                break; // 404: gone with Redis's data; a later update retries
            }
            const body = await res.json();
            const ups = (body.updates || []).filter((u) => u && u.incident);
            timelines.set(id, ups.sort((a, b) => b.seq - a.seq).map((u) => u.incident));
            if (isEnded(body.incident)) {
                addHistory(body.incident);
            }
            render();
        }
    } catch {
        // offline: the next update of this incident fetches again
    } finally {
        loading.delete(id);
    }
}

/* The incident's states, newest first: the fetched timeline, with the live
 * state on top until the fetch has caught up with it. */
function entries(inc) {
    const list = timelines.get(inc.incident_id) || [];
    return list.some((u) => u.version === inc.version) ? list : [inc, ...list];
}

function timeline(inc) {
    return h(
        'ol',
        { class: 'timeline' },
        ...entries(inc).map((u) =>
            h(
                'li',
                {},
                h('span', { class: 'when' }, time(u.updated_at ?? u.occurred_at)),
                ' ',
                h('strong', {}, statusLabel(u.status)),
                u.message ? h('span', { class: 'what' }, ' — ' + u.message) : null,
            ),
        ),
    );
}

function incidentCard(inc, ended) {
    const impact = Object.hasOwn(IMPACT_LABELS, inc.impact) ? inc.impact : 'none';
    const id = 'incident-' + inc.incident_id.replace(/[^A-Za-z0-9_-]/g, '_');
    const link = incidentLink(inc);
    const started = time(inc.started_at ?? inc.occurred_at);
    const impactLabel = inc.kind === 'maintenance' ? 'Maintenance' : IMPACT_LABELS[impact];
    const meta = h(
        'p',
        { class: 'meta' },
        h('span', { class: 'impact' }, impactLabel),
        ' · ',
        h('span', { class: 'status' }, statusLabel(inc.status)),
        (inc.components || []).length ? ' · Affects: ' + inc.components.join(', ') : null,
        started ? ' · Started ' : null,
        started,
        ended ? ' · Ended ' : null,
        ended ? time(inc.updated_at) : null,
    );
    const updates = timeline(inc);
    const details = link && h('a', { href: link.href, rel: 'noopener noreferrer' }, 'Details');
    const attrs = { class: 'incident', 'data-impact': impact, 'data-id': inc.incident_id };
    return h(
        'article',
        { ...attrs, 'aria-labelledby': id },
        h('h3', { id }, String(inc.title ?? inc.incident_id)),
        meta,
        ended ? null : h('p', { class: 'message' }, String(inc.message ?? '')),
        details ? h('p', {}, details) : null,
        ended
            ? h('details', {}, h('summary', {}, `Updates (${updates.children.length})`), updates)
            : h('div', {}, h('h4', { class: 'visually-hidden' }, 'Updates'), updates),
    );
}

function render() {
    if (synced) {
        const o = overallState(active);
        $('overall').dataset.level = o.level;
        $('overall-text').textContent = o.text;
        $('as-of').replaceChildren('As of ', time(new Date().toISOString()));
    }

    const states = componentStates(active, [...seen], filter.components);
    $('components').replaceChildren(
        ...[...states].map(([c, s]) =>
            h('li', { 'data-state': s, 'data-component': c }, h('span', { class: 'name' }, c),
              h('span', { class: 'state' }, STATE_LABELS[s])),
        ),
    );
    $('components-empty').hidden = states.size > 0;

    $('active').replaceChildren(...active.map((inc) => incidentCard(inc, false)));
    $('active-empty').hidden = active.length > 0;

    const ids = new Set(active.map((i) => i.incident_id));
    const past = [...history.values()]
        .filter((i) => !ids.has(i.incident_id))
        .sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)))
        .slice(0, HISTORY_MAX);
    // Rebuilt on every change: entries the reader opened stay open.
    const idOf = (d) => d.parentElement.dataset.id;
    const open = new Set([...$('history').querySelectorAll('details[open]')].map(idOf));
    $('history').replaceChildren(...past.map((inc) => incidentCard(inc, true)));
    for (const d of $('history').querySelectorAll('details')) {
        d.open = open.has(idOf(d));
    }
    $('history-empty').hidden = past.length > 0;
    renderChoices();
}

/* ---- live */

function announce(text) {
    $('announcer').textContent = text;
}

const TRANSPORTS = { ws: 'WebSocket', sse: 'Server-Sent Events', poll: 'polling' };

function onState({ state, transport }) {
    const text = {
        connecting: 'Connecting…',
        open: `Live (${TRANSPORTS[transport] || transport})`,
        reconnecting: 'Connection lost, reconnecting…',
        failed: 'Live updates stopped: reload the page',
        closed: 'Live updates stopped',
    }[state];
    $('live').dataset.state = state;
    $('live').textContent = text || state;
}

function onUpdate({ incident: inc }) {
    if (!inc || typeof inc.incident_id !== 'string') {
        return;
    }
    const known = active.some((i) => i.incident_id === inc.incident_id);
    const title = String(inc.title ?? inc.incident_id);
    if (isEnded(inc)) {
        addHistory(inc);
        announce(`${title}: ${statusLabel(inc.status)}.`);
    } else {
        const status = statusLabel(inc.status);
        announce(known ? `${title}: ${status}.` : `New incident: ${title}. ${status}.`);
    }
    load(inc.incident_id);
}

function onChange({ incidents }) {
    const now = new Set(incidents.map((i) => i.incident_id));
    for (const old of active) {
        if (!now.has(old.incident_id)) {
            load(old.incident_id); // ended while we were away (a reset snapshot)
        }
    }
    active = incidents;
    for (const inc of active) {
        (inc.components || []).forEach((c) => seen.add(c));
        if (!timelines.has(inc.incident_id)) {
            load(inc.incident_id);
        }
    }
    render();
}

/* ---- subscribe by email */

function renderChoices() {
    const box = $('subscribe-choices');
    const have = new Set([...box.querySelectorAll('input')].map((i) => i.value));
    for (const c of [...seen].sort()) {
        if (!have.has(c)) {
            const id = 'subscribe-c-' + c;
            const input = h('input', { type: 'checkbox', name: 'components', value: c, id });
            input.checked = filter.components.includes(c);
            box.append(h('div', { class: 'choice' }, input, h('label', { for: input.id }, c)));
        }
    }
    $('subscribe-components').hidden = seen.size === 0;
}

const OUTCOMES = {
    202: () =>
        'Almost done: if this address is not subscribed yet, a confirmation email is on its ' +
        'way. Follow its link to start getting updates.',
    400: (b) => `Error: please check the form. ${b.message || ''}`,
    429: (b) => `Error: too many requests. ${b.message || 'Please try again later.'}`,
    503: (b) =>
        b.error === 'email_disabled'
            ? 'Error: email updates are not available on this server.'
            : 'Error: the service is busy. Please try again in a moment.',
};

async function subscribe(ev) {
    ev.preventDefault();
    const form = ev.target;
    const address = $('subscribe-address');
    const result = $('subscribe-result');
    address.removeAttribute('aria-invalid');
    if (!form.reportValidity()) {
        address.setAttribute('aria-invalid', 'true');
        return;
    }
    const checked = form.querySelectorAll('input[name=components]:checked');
    const components = [...checked].map((i) => i.value);
    const body = { address: address.value.trim() };
    if (components.length) {
        body.filter = { components };
    }
    form.setAttribute('aria-busy', 'true');
    form.querySelector('button').disabled = true;
    result.textContent = 'Sending…';
    let status = 0;
    let answer = {};
    try {
        const res = await fetch(new URL('v1/subscribe', base), {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(body),
        });
        status = res.status;
        answer = await res.json().catch(() => ({}));
    } catch {
        status = 0;
    }
    form.removeAttribute('aria-busy');
    form.querySelector('button').disabled = false;
    const why = status ? `HTTP ${status}` : 'network error';
    const text = OUTCOMES[status]
        ? OUTCOMES[status](answer)
        : `Error: the subscription failed (${why}). Please try again later.`;
    result.dataset.outcome = status === 202 ? 'ok' : 'error';
    result.dataset.status = String(status);
    result.textContent = text;
    if (status === 400) {
        address.setAttribute('aria-invalid', 'true');
        address.focus();
    }
}

/* GET /v1/history: what ended before this page was opened. */
async function loadHistory() {
    const qs = filterQuery(filter);
    try {
        const res = await fetch(new URL(`v1/history?${qs ? qs + '&' : ''}limit=${HISTORY_MAX}`, base));
        if (!res.ok) {
            return; // the live stream still fills history as incidents end
        }
        const { incidents } = await res.json();
        for (const inc of Array.isArray(incidents) ? incidents : []) {
            if (!history.has(inc.incident_id)) {
                addHistory(inc);
            }
        }
        render();
    } catch {
        // offline or starting: nothing to show yet
    }
}

/* ---- start */

function start() {
    loadHistory();
    $('subscribe').addEventListener('submit', subscribe);
    const client = new TocsinClient({ url: base.href, filter, onState, onUpdate, onChange });
    // A snapshot that changes nothing emits no change, but it is news: the
    // set is now known (maybe empty), so the headline may speak.
    client.addEventListener('snapshot', ({ detail }) => {
        synced = true;
        onChange(detail);
    });
    render();
}

start();
