// tocsin — SPDX-License-Identifier: MIT
//
// <tocsin-banner>: an outage banner for any page. It keeps a TocsinClient
// (tocsin.js) subscribed to the attributes' filter and shows the most severe
// active incident, live, in its shadow DOM; it disappears on resolve. It is
// accessible (alert/status live region, no re-announcement of unchanged text,
// a labelled dismiss button, reduced motion) and styled from outside through
// CSS custom properties and ::part(). The pure parts (choice, labels, link,
// dismissal memory) are exported and need no browser.
//
//   <script type="module" src="/js/banner.js"></script>
//   <tocsin-banner src="https://status.example.com" components="playback"
//                  regions="eu-west" min-impact="minor"></tocsin-banner>

import { TocsinClient, mostSevere } from './tocsin.js';

export const STATUS_LABELS = Object.freeze({
    investigating: 'Investigating',
    identified: 'Identified',
    monitoring: 'Monitoring',
    resolved: 'Resolved',
    scheduled: 'Scheduled',
    in_progress: 'In progress',
    verifying: 'Verifying',
    completed: 'Completed',
});

export const IMPACT_LABELS = Object.freeze({
    critical: 'Critical outage',
    major: 'Major outage',
    minor: 'Minor issue',
    none: 'Notice',
});

export const DEFAULT_LABELS = Object.freeze({
    statuses: STATUS_LABELS,
    impacts: IMPACT_LABELS,
    maintenance: 'Maintenance',
    started: 'Started',
    link: 'Details',
    dismiss: 'Dismiss this notice',
});

/* Links shown, best first; otherwise the first https link of the incident. */
const LINK_KEYS = ['status_page', 'status', 'incident', 'details', 'postmortem'];

/** A status as a label: a known one from labels, else "in_progress" → "In progress". */
export function statusLabel(status, labels = STATUS_LABELS) {
    if (typeof status !== 'string' || status === '') {
        return '';
    }
    if (Object.hasOwn(labels, status)) {
        return labels[status];
    }
    const s = status.replace(/_/g, ' ');
    return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * The live-region semantics for an impact: major and critical interrupt
 * (role=alert, assertive), anything else waits its turn (role=status, polite).
 */
export function bannerRole(impact) {
    return impact === 'major' || impact === 'critical'
        ? { role: 'alert', live: 'assertive' }
        : { role: 'status', live: 'polite' };
}

/**
 * The link to show: links.status_page or the like, else the first link; only
 * http(s) URLs, so a javascript: or data: URL in an event never becomes a
 * clickable link. @returns {{key, href}} or null.
 */
export function incidentLink(incident) {
    const links = incident && incident.links;
    if (!links || typeof links !== 'object') {
        return null;
    }
    const keys = [...LINK_KEYS.filter((k) => k in links), ...Object.keys(links)];
    for (const key of keys) {
        const v = links[key];
        if (typeof v !== 'string') {
            continue;
        }
        try {
            const u = new URL(v);
            if (u.protocol === 'https:' || u.protocol === 'http:') {
                return { key, href: u.href };
            }
        } catch {
            // not a URL: try the next
        }
    }
    return null;
}

/**
 * The started time for people: in the user's own time zone and locale (or
 * the given ones). @returns {{text, datetime}}; text is '' for a bad date.
 */
export function formatStarted(iso, locale, timeZone) {
    const t = Date.parse(iso);
    if (typeof iso !== 'string' || Number.isNaN(t)) {
        return { text: '', datetime: '' };
    }
    const opts = { dateStyle: 'medium', timeStyle: 'short' };
    if (timeZone) {
        opts.timeZone = timeZone;
    }
    let fmt;
    try {
        fmt = new Intl.DateTimeFormat(locale || undefined, opts);
    } catch {
        fmt = new Intl.DateTimeFormat(undefined, opts); // a bad lang attribute
    }
    return { text: fmt.format(new Date(t)), datetime: new Date(t).toISOString() };
}

/**
 * Remembers, per incident, the version the user dismissed, in sessionStorage
 * (or any Storage): that version stays hidden for the tab's life, a newer
 * one shows again. Storage that throws (private modes, sandboxed frames)
 * degrades to memory.
 */
export class DismissMemory {
    constructor(storage, key = 'tocsin-banner:dismissed') {
        this.storage = storage || null;
        this.key = key;
        this.map = {};
        try {
            const raw = this.storage && this.storage.getItem(key);
            const parsed = raw ? JSON.parse(raw) : {};
            if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
                this.map = parsed;
            }
        } catch {
            this.map = {};
        }
    }

    isDismissed(incident) {
        const v = this.map[incident.incident_id];
        return typeof v === 'number' && !(incident.version > v);
    }

    dismiss(incident) {
        this.map[incident.incident_id] = incident.version;
        this.#save();
    }

    /** Forgets incidents no longer active, so the memory stays small. */
    prune(activeIds) {
        const keep = new Set(activeIds);
        let changed = false;
        for (const id of Object.keys(this.map)) {
            if (!keep.has(id)) {
                delete this.map[id];
                changed = true;
            }
        }
        if (changed) {
            this.#save();
        }
    }

    #save() {
        try {
            if (this.storage) {
                this.storage.setItem(this.key, JSON.stringify(this.map));
            }
        } catch {
            // memory only
        }
    }
}

/** The incident to show: the most severe one not dismissed, or null. */
export function chooseIncident(incidents, memory) {
    return mostSevere(incidents.filter((inc) => !(memory && memory.isDismissed(inc))));
}

/**
 * What the banner shows for an incident (null: nothing), as plain data: the
 * element renders it, and compares it with the last one so an update that
 * changes nothing visible touches no DOM and is not announced again.
 */
export function bannerModel(incident, { labels = DEFAULT_LABELS, locale, timeZone } = {}) {
    if (!incident) {
        return null;
    }
    const impact = Object.hasOwn(IMPACT_LABELS, incident.impact) ? incident.impact : 'none';
    const maintenance = incident.kind === 'maintenance';
    return {
        impact,
        ...bannerRole(impact),
        impactLabel: maintenance ? labels.maintenance : labels.impacts[impact],
        title: String(incident.title ?? ''),
        status: statusLabel(incident.status, labels.statuses),
        message: String(incident.message ?? ''),
        started: formatStarted(incident.started_at ?? incident.occurred_at, locale, timeZone),
        link: incidentLink(incident),
    };
}

/* ---------------------------------------------------------------- element */

/* Static markup only: every value from an event goes in through textContent
 * or a checked attribute, never as HTML. */
const TEMPLATE = `
<style>
:host {
    display: block;
    contain: content;
}
.banner {
    --_bg: var(--tocsin-banner-bg, #e8f1fb);
    --_fg: var(--tocsin-banner-fg, #0b3050);
    display: flex;
    align-items: flex-start;
    gap: 0.75rem;
    font: var(--tocsin-banner-font, inherit);
    line-height: 1.4;
}
.banner[data-impact="minor"] {
    --_bg: var(--tocsin-banner-minor-bg, #fff4ce);
    --_fg: var(--tocsin-banner-minor-fg, #4a3600);
}
.banner[data-impact="major"] {
    --_bg: var(--tocsin-banner-major-bg, #9a3412);
    --_fg: var(--tocsin-banner-major-fg, #ffffff);
}
.banner[data-impact="critical"] {
    --_bg: var(--tocsin-banner-critical-bg, #a4161a);
    --_fg: var(--tocsin-banner-critical-fg, #ffffff);
}
/* Idle, the box has no size but stays rendered: its live region must be
 * in the accessibility tree before content arrives to be announced. */
.banner[data-state="shown"] {
    padding: var(--tocsin-banner-padding, 0.75rem 1rem);
    background: var(--_bg);
    color: var(--_fg);
    border: var(--tocsin-banner-border, none);
    border-radius: var(--tocsin-banner-radius, 0);
    box-shadow: var(--tocsin-banner-shadow, none);
    animation: tocsin-banner-in 180ms ease-out;
}
[hidden] {
    display: none !important;
}
.body {
    flex: 1;
    min-width: 0;
}
p {
    margin: 0;
}
.headline {
    display: flex;
    flex-wrap: wrap;
    gap: 0.25rem 0.5rem;
    align-items: baseline;
}
.impact {
    font-size: 0.8em;
    font-weight: 600;
    text-transform: uppercase;
    letter-spacing: 0.04em;
}
.status {
    padding: 0 0.4em;
    border: 1px solid currentColor;
    border-radius: 0.25em;
    font-size: 0.85em;
}
.message {
    margin-top: 0.25rem;
    white-space: pre-line;
}
.message:empty {
    display: none;
}
.meta {
    margin-top: 0.25rem;
    font-size: 0.85em;
    opacity: 0.9;
}
a {
    color: var(--tocsin-banner-link, inherit);
    text-decoration: underline;
}
.dismiss {
    flex: none;
    min-width: 2rem;
    min-height: 2rem;
    border: 0;
    border-radius: 0.25rem;
    background: transparent;
    color: inherit;
    font: inherit;
    font-size: 1.25rem;
    line-height: 1;
    cursor: pointer;
}
a:focus-visible,
.dismiss:focus-visible {
    outline: 2px solid currentColor;
    outline-offset: 2px;
}
@keyframes tocsin-banner-in {
    from {
        opacity: 0;
        transform: translateY(-0.5rem);
    }
}
@media (prefers-reduced-motion: reduce) {
    .banner[data-state="shown"] {
        animation: none;
        transition: none;
    }
}
@media (forced-colors: active) {
    .banner[data-state="shown"] {
        border: 1px solid CanvasText;
    }
}
</style>
<div class="banner" part="banner" data-state="idle">
  <div class="body" part="body" role="status" aria-live="polite" aria-atomic="true">
    <div class="content" hidden>
      <p class="headline">
        <span class="impact" part="impact"></span>
        <strong class="title" part="title"></strong>
        <span class="status" part="status"></span>
      </p>
      <p class="message" part="message"></p>
      <p class="meta" part="meta">
        <span class="started-label"></span> <time class="started" part="started"></time><span
          class="link-wrap" hidden> · <a class="link" part="link" target="_blank"
          rel="noopener noreferrer"></a></span>
      </p>
    </div>
  </div>
  <button class="dismiss" part="dismiss" type="button" hidden
          aria-label="Dismiss this notice"><span aria-hidden="true">×</span></button>
</div>`;

/* The elements holding text from an incident (keys of the element's #els). */
const TEXT_ELEMENTS = ['impact', 'title', 'status', 'message', 'startedLabel', 'started', 'link'];

const Base = globalThis.HTMLElement ?? class {};

function session() {
    try {
        return globalThis.sessionStorage ?? null;
    } catch {
        return null; // access itself throws in some sandboxed frames
    }
}

export class TocsinBanner extends Base {
    static get observedAttributes() {
        return ['src', 'components', 'regions', 'min-impact', 'transports'];
    }

    #client = null;
    #els;
    #memory = new DismissMemory(session());
    #shown = null; // the incident on screen
    #key = ''; // what is on screen, to skip unchanged renders
    #options = {};
    #labels = DEFAULT_LABELS;
    #queued = false;

    constructor() {
        super();
        const root = this.attachShadow({ mode: 'open' });
        root.innerHTML = TEMPLATE;
        const q = (sel) => root.querySelector(sel);
        this.#els = {
            banner: q('.banner'),
            region: q('.body'),
            content: q('.content'),
            impact: q('.impact'),
            title: q('.title'),
            status: q('.status'),
            message: q('.message'),
            startedLabel: q('.started-label'),
            started: q('.started'),
            linkWrap: q('.link-wrap'),
            link: q('.link'),
            dismiss: q('.dismiss'),
        };
        this.#els.dismiss.addEventListener('click', () => this.dismiss());
    }

    connectedCallback() {
        this.#restart();
    }

    disconnectedCallback() {
        this.#stop();
    }

    attributeChangedCallback(name, old, value) {
        if (old !== value) {
            this.#queueRestart();
        }
    }

    /** The TocsinClient in use (null without src or while disconnected). */
    get client() {
        return this.#client;
    }

    /** The incident on screen, or null. */
    get incident() {
        return this.#shown;
    }

    /**
     * Extra TocsinClient options (transports, backoff, paths, ...). Set them
     * before the element is connected; set later, the client restarts.
     */
    get clientOptions() {
        return { ...this.#options };
    }

    set clientOptions(o) {
        this.#options = { ...(o || {}) };
        this.#queueRestart();
    }

    /** Labels for other languages: merged over DEFAULT_LABELS. */
    get labels() {
        return this.#labels;
    }

    set labels(l) {
        this.#labels = {
            ...DEFAULT_LABELS,
            ...(l || {}),
            statuses: { ...STATUS_LABELS, ...((l && l.statuses) || {}) },
            impacts: { ...IMPACT_LABELS, ...((l && l.impacts) || {}) },
        };
        this.#key = '';
        this.#render();
    }

    /** Hides the incident on screen until a newer version of it arrives. */
    dismiss() {
        if (this.#shown) {
            this.#memory.dismiss(this.#shown);
            this.#render();
        }
    }

    /* Attribute changes come in bursts (a framework sets several): one restart. */
    #queueRestart() {
        if (this.#queued || !this.isConnected) {
            return;
        }
        this.#queued = true;
        queueMicrotask(() => {
            // Still wanted: a connectedCallback meanwhile has restarted already.
            if (this.#queued && this.isConnected) {
                this.#restart();
            }
        });
    }

    #stop() {
        if (this.#client) {
            this.#client.close();
            this.#client = null;
        }
    }

    #restart() {
        this.#queued = false;
        this.#stop();
        const src = this.getAttribute('src');
        if (src) {
            const opts = {
                url: src,
                filter: {
                    components: this.getAttribute('components') || '',
                    regions: this.getAttribute('regions') || '',
                    min_impact: this.getAttribute('min-impact') || null,
                },
                ...this.#options,
            };
            const transports = this.getAttribute('transports');
            if (transports) {
                opts.transports = transports.split(',').map((s) => s.trim());
            }
            try {
                this.#client = new TocsinClient(opts);
            } catch (e) {
                console.warn('<tocsin-banner>:', e.message);
            }
        }
        if (this.#client) {
            const client = this.#client;
            client.addEventListener('change', () => client === this.#client && this.#render());
            client.addEventListener('snapshot', () => {
                if (client === this.#client) {
                    this.#memory.prune(client.incidents.map((i) => i.incident_id));
                }
            });
        }
        this.#render();
    }

    #render() {
        const incidents = this.#client ? this.#client.incidents : [];
        const inc = chooseIncident(incidents, this.#memory);
        const lang = this.closest && this.closest('[lang]');
        const locale = lang ? lang.lang : undefined;
        const model = bannerModel(inc, { labels: this.#labels, locale });
        const changed = this.#shown !== inc;
        this.#shown = inc;
        const key = JSON.stringify(model);
        if (key !== this.#key) {
            this.#key = key;
            this.#paint(model);
        }
        if (changed) {
            this.dispatchEvent(
                new CustomEvent('tocsin-change', {
                    detail: { incident: inc },
                    bubbles: true,
                    composed: true,
                }),
            );
        }
    }

    #paint(m) {
        const e = this.#els;
        if (!m) {
            // Emptied, not removed: the live region must exist before the
            // next content arrives for it to be announced.
            e.content.hidden = true;
            e.dismiss.hidden = true;
            for (const k of TEXT_ELEMENTS) {
                e[k].textContent = '';
            }
            e.banner.dataset.state = 'idle';
            e.banner.removeAttribute('data-impact');
            e.banner.setAttribute('part', 'banner');
            return;
        }
        // Role first, content second, so the text is announced with the
        // urgency of the new impact. The dismiss button is outside the
        // region: its label is not part of the announcement.
        e.region.setAttribute('role', m.role);
        e.region.setAttribute('aria-live', m.live);
        e.banner.dataset.state = 'shown';
        e.banner.dataset.impact = m.impact;
        e.banner.setAttribute('part', `banner banner-${m.impact}`);
        e.impact.textContent = m.impactLabel;
        e.title.textContent = m.title;
        e.status.textContent = m.status;
        e.message.textContent = m.message;
        e.startedLabel.textContent = m.started.text ? this.#labels.started : '';
        e.started.textContent = m.started.text;
        e.started.dateTime = m.started.datetime;
        if (m.link) {
            e.link.href = m.link.href;
            e.link.textContent = this.#labels.link;
            e.linkWrap.hidden = false;
        } else {
            e.link.removeAttribute('href');
            e.link.textContent = '';
            e.linkWrap.hidden = true;
        }
        e.dismiss.setAttribute('aria-label', this.#labels.dismiss);
        e.dismiss.hidden = false;
        e.content.hidden = false;
    }
}

if (globalThis.customElements && !globalThis.customElements.get('tocsin-banner')) {
    globalThis.customElements.define('tocsin-banner', TocsinBanner);
}
