// tocsin — SPDX-License-Identifier: MIT
//
// Unit tests of the pure parts of clients/js/banner.js (node --test
// tests/js/): which incident is shown, dismissal per version, labels, roles,
// links and local time. The element itself is tested in a real Chromium
// (tests/e2e/test_browser.py).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    DismissMemory,
    bannerModel,
    bannerRole,
    chooseIncident,
    formatStarted,
    incidentLink,
    statusLabel,
} from '../../clients/js/banner.js';
import { incident } from './fakes.js';

const inc = incident;

class MemStorage {
    constructor(init = {}) {
        this.data = { ...init };
    }
    getItem(k) {
        return k in this.data ? this.data[k] : null;
    }
    setItem(k, v) {
        this.data[k] = String(v);
    }
}

test('choice: the most severe active incident, newest on a tie', () => {
    const list = [
        inc('a', 1, { impact: 'minor' }),
        inc('b', 1, { impact: 'major', updated_at: '2026-11-25T08:00:00Z' }),
        inc('c', 1, { impact: 'major', updated_at: '2026-11-25T08:05:00Z' }),
        inc('d', 1, { impact: 'none' }),
    ];
    assert.equal(chooseIncident(list, null).incident_id, 'c');
    assert.equal(chooseIncident([], null), null);
});

test('dismissal: per incident version; a newer version shows again; kept in storage', () => {
    const storage = new MemStorage();
    const mem = new DismissMemory(storage);
    const list = [inc('a', 1, { impact: 'critical' }), inc('b', 1, { impact: 'minor' })];
    mem.dismiss(list[0]);
    assert.equal(chooseIncident(list, mem).incident_id, 'b', 'the next one shows');
    mem.dismiss(list[1]);
    assert.equal(chooseIncident(list, mem), null);
    const newer = [inc('a', 2, { impact: 'critical' }), list[1]];
    assert.equal(chooseIncident(newer, mem).incident_id, 'a', 'version 2 was not dismissed');
    // Another element (or a reload of the tab) reads the same memory.
    const again = new DismissMemory(storage);
    assert.equal(again.isDismissed(inc('a', 1)), true);
    assert.equal(again.isDismissed(inc('a', 2)), false);
    again.prune(['b']);
    assert.deepEqual(JSON.parse(storage.getItem('tocsin-banner:dismissed')), { b: 1 });
});

test('dismissal: broken or throwing storage degrades to memory', () => {
    const bad = new DismissMemory(new MemStorage({ 'tocsin-banner:dismissed': '{not json' }));
    assert.equal(bad.isDismissed(inc('a', 1)), false);
    const throwing = {
        getItem() {
            throw new Error('SecurityError');
        },
        setItem() {
            throw new Error('QuotaExceededError');
        },
    };
    const mem = new DismissMemory(throwing);
    mem.dismiss(inc('a', 1));
    assert.equal(mem.isDismissed(inc('a', 1)), true);
    const none = new DismissMemory(null);
    none.dismiss(inc('a', 3));
    assert.equal(none.isDismissed(inc('a', 3)), true);
});

test('roles: alert/assertive for major and critical, status/polite otherwise', () => {
    const rows = [
        ['critical', 'alert', 'assertive'],
        ['major', 'alert', 'assertive'],
        ['minor', 'status', 'polite'],
        ['none', 'status', 'polite'],
        [undefined, 'status', 'polite'],
    ];
    for (const [impact, role, live] of rows) {
        assert.deepEqual(bannerRole(impact), { role, live }, String(impact));
    }
});

test('status labels: known ones, unknown ones made readable', () => {
    assert.equal(statusLabel('investigating'), 'Investigating');
    assert.equal(statusLabel('in_progress'), 'In progress');
    assert.equal(statusLabel('rolling_back'), 'Rolling back');
    assert.equal(statusLabel(''), '');
    assert.equal(statusLabel(undefined), '');
    assert.equal(statusLabel('toString'), 'ToString', 'no prototype keys');
});

test('links: status_page first, only http(s), never javascript:', () => {
    const rows = [
        [{ postmortem: 'https://pm/1', status_page: 'https://status/1' }, 'https://status/1'],
        [{ other: 'https://x/y' }, 'https://x/y'],
        [{ status_page: 'javascript:alert(1)', details: 'https://ok/' }, 'https://ok/'],
        [{ status_page: 'data:text/html,hi' }, null],
        [{ status_page: 'not a url' }, null],
        [{ status_page: 42 }, null],
        [undefined, null],
    ];
    for (const [links, want] of rows) {
        const got = incidentLink({ links });
        assert.equal(got ? got.href : null, want, JSON.stringify(links));
    }
});

test('started time: in the given (user) time zone and locale', () => {
    const tokyo = formatStarted('2026-11-25T08:00:00Z', 'en-US', 'Asia/Tokyo');
    assert.match(tokyo.text, /Nov 25, 2026/);
    assert.match(tokyo.text, /5:00\s?PM/);
    assert.equal(tokyo.datetime, '2026-11-25T08:00:00.000Z');
    const ny = formatStarted('2026-11-25T08:00:00Z', 'en-US', 'America/New_York');
    assert.match(ny.text, /3:00\s?AM/);
    const de = formatStarted('2026-11-25T08:00:00Z', 'de-DE', 'Europe/Berlin');
    assert.match(de.text, /09:00/);
    assert.deepEqual(formatStarted('yesterday'), { text: '', datetime: '' });
    assert.ok(formatStarted('2026-11-25T08:00:00Z', 'not a locale!!').text, 'a bad lang falls back');
});

test('model: what the banner shows, equal for invisible changes', () => {
    const a = inc('a', 1, { impact: 'major', links: { status_page: 'https://status/a' } });
    const m = bannerModel(a, { locale: 'en-US', timeZone: 'UTC' });
    assert.equal(m.role, 'alert');
    assert.equal(m.impactLabel, 'Major outage');
    assert.equal(m.title, 'a v1');
    assert.equal(m.status, 'Investigating');
    assert.equal(m.link.href, 'https://status/a');
    // A new version that changes nothing visible renders the same model, so
    // the element leaves the live region alone (no re-announcement).
    const b = { ...a, version: 2, updated_at: '2026-11-25T09:00:00Z', components: ['x'] };
    assert.equal(JSON.stringify(bannerModel(b, { locale: 'en-US', timeZone: 'UTC' })), JSON.stringify(m));
    const maint = bannerModel(inc('m', 1, { kind: 'maintenance', status: 'in_progress', impact: 'weird' }));
    assert.equal(maint.impactLabel, 'Maintenance');
    assert.equal(maint.impact, 'none');
    assert.equal(maint.status, 'In progress');
    assert.equal(bannerModel(null), null);
});
