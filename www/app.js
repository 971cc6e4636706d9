// The dashboard's logic: plain JavaScript, no library. The status comes from
// the bridge's event stream (GET /api/stream, event "status", data = the
// /api/status document); when the stream cannot be had (no EventSource, or
// the bridge refuses another stream) it long-polls GET /api/status?since=
// GENERATION. The page never reloads itself. Other documents are fetched
// now and then: /api/health (errors, safe mode, Wi-Fi), /api/events,
// /api/history (the chart), /api/bmslog, and /api/params when its section is
// opened. Controls POST to the control service with the API token, which is
// asked for once and kept in this browser's localStorage until "Forget".
// Figures are never shown as live unless the bridge says the link is live
// and its last word is recent.
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'antbridge.token';
const RING = 2 * Math.PI * 52; // the SOC ring's circumference (svg units)
const GROUPS = ['voltage', 'temperature', 'current', 'balance', 'battery', 'system'];
const EXPIRIES = [[900, '15 min'], [3600, '1 h'], [14400, '4 h'], [86400, '24 h'], [0, 'until released']];

let S = null; // the newest /api/status document
let gotAt = 0; // Date.now() when it arrived
let health = null;
let mode = ''; // 'stream' or 'poll'
let source = null; // the EventSource
let sseAgainAt = 0; // when to try the stream again while long-polling
let polling = false;
let memToken = ''; // the token when localStorage is not available
let alarmKey = null; // what the alarm list shows (rebuilt only when it changes)
let outputNames = '';
let hist = null; // the newest /api/history document

// -- formatting ---------------------------------------------------------------------------

function esc(v) {
  return String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
function num(v, d) {
  return v === null || v === undefined || isNaN(v) ? '—' : Number(v).toFixed(d);
}
function signed(v, d) {
  if (v === null || v === undefined) return '—';
  const t = Math.abs(v).toFixed(d);
  return Number(t) === 0 ? t : (v > 0 ? '+' : '−') + t;
}
function span(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + ' s';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (!h) return m + ' min' + (s % 60 && m < 10 ? ' ' + (s % 60) + ' s' : '');
  if (h < 48) return h + ' h ' + m + ' min';
  return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
}
function dur(s) {
  return s === null || s === undefined || s < 0 ? '—' : span(s);
}
function hhmm(date) {
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function kv(dl, rows) {
  dl.innerHTML = rows.filter((r) => r).map((r) => '<dt>' + esc(r[0]) + '</dt><dd>' + esc(r[1]) + '</dd>').join('');
}
function setReply(e, text, cls) {
  e.textContent = text;
  e.className = 'reply' + (cls ? ' ' + cls : '');
}
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// -- liveness -------------------------------------------------------------------------------

function pollMs() {
  return (S && S.link && S.link.poll_ms) || 1000;
}
// With a live link a new status comes every poll; nothing for this long means
// the bridge itself is out of reach, so the figures are not live any more.
function quietLimitMs() {
  return Math.max(5000, 3 * pollMs());
}
function bridgeQuiet() {
  return Date.now() - gotAt > quietLimitMs();
}
function isLive() {
  return !!S && S.live === true && !bridgeQuiet();
}
function dataAgeS() {
  const a = S && S.link ? S.link.data_age_ms : null;
  return a === null || a === undefined ? null : (a + Date.now() - gotAt) / 1000;
}
function notLiveText() {
  const age = dataAgeS();
  if (age === null) return 'not live — no data from the BMS yet';
  return 'not live — data ' + Math.round(age) + ' s old';
}

// -- the status ---------------------------------------------------------------------------

function got(doc) {
  S = doc;
  gotAt = Date.now();
  render();
}

function render() {
  if (!S) return;
  const live = isLive();
  document.body.classList.toggle('notlive', !live);
  renderLink(live);
  renderAlarms(live);
  const st = S.status || {};
  renderPack(st);
  renderCells(st);
  renderTemps(st);
  renderSwitches(st);
  renderOutputs(S.outputs || []);
  renderAcc(S.acc);
  renderEnergy(S.energy);
  renderLinkDetails(S.link || {});
}

function renderLink(live) {
  const link = S.link || {};
  const pill = $('link-pill');
  pill.textContent = live ? 'BMS link ok' : 'BMS link ' + (bridgeQuiet() && S.live ? 'no update' : (link.state || '?').toUpperCase());
  pill.className = 'pill ' + (live ? 'ok' : 'bad');
  const stale = $('stale');
  stale.hidden = live;
  const tag = live ? '' : notLiveText();
  for (const a of document.querySelectorAll('.bms .age')) {
    a.textContent = tag;
    a.hidden = live;
  }
  if (live) return;
  let title = notLiveText();
  if (bridgeQuiet()) title += ' — no update from the bridge for ' + span((Date.now() - gotAt) / 1000);
  $('stale-title').textContent = title;
  $('stale-line').textContent = 'link ' + (link.state || '?') + ' · line ' + (link.line || '?') +
    (link.passive ? ' · listening to another master' : '');
  $('stale-hint').textContent = link.hint || '';
}

const SOURCE_WORDS = {
  protection: 'protection', warning: 'warning', charge_mos: 'charging switched off',
  discharge_mos: 'discharging switched off', system_log: 'BMS system log',
};

function renderAlarms(live) {
  const list = S.alarms || [];
  const box = $('alarms');
  const key = list.map((a) => a.code).join(',') + (live ? '' : '/old');
  if (key !== alarmKey) {
    alarmKey = key;
    const ul = $('alarm-list');
    ul.textContent = '';
    for (const a of list) {
      const li = el('li');
      li.appendChild(el('b', '', a.name));
      const sinceMs = a.since ? Date.parse(a.since) : Date.now() - a.since_ms;
      const when = el('span', '', (SOURCE_WORDS[a.source] || a.source) + ' · since ' + hhmm(new Date(sinceMs)));
      const d = el('span', 'for');
      d.setAttribute('aria-hidden', 'true');
      when.appendChild(d);
      li.appendChild(when);
      li.dataset.sinceMs = a.since_ms;
      ul.appendChild(li);
    }
    const warnings = list.filter((a) => a.source === 'warning').length;
    const prot = list.length - warnings;
    let h = 'No active protections or warnings';
    if (list.length) {
      const parts = [];
      if (prot) parts.push(prot + (prot === 1 ? ' protection' : ' protections'));
      if (warnings) parts.push(warnings + (warnings === 1 ? ' warning' : ' warnings'));
      h = '⚠ ' + parts.join(', ') + ' active';
      if (!live) h += ' in the last data';
    } else if (!live) {
      h = 'No protections or warnings in the last data';
    }
    $('alarms-h').textContent = h;
    const note = el('span', 'agenote');
    note.setAttribute('aria-hidden', 'true');
    $('alarms-h').appendChild(note);
    box.className = 'alarms' + (list.length ? '' : ' none') + (live ? '' : ' old');
  }
  const since = Date.now() - gotAt;
  $('alarms-h').lastChild.textContent = live ? '' : ' (' + notLiveText() + ')';
  for (const li of $('alarm-list').children) {
    li.querySelector('.for').textContent = ' (' + span((Number(li.dataset.sinceMs) + since) / 1000) + ')';
  }
}

function renderPack(st) {
  const soc = st.soc_pct;
  const ring = $('soc-ring');
  $('soc').textContent = soc === null || soc === undefined ? '—' : soc + ' %';
  $('soc-arc').style.strokeDasharray = (soc ? (RING * Math.min(soc, 100)) / 100 : 0) + ' 400';
  ring.className = 'ring' + (soc === null || soc === undefined ? '' : soc < 20 ? ' low' : soc < 40 ? ' mid' : '');
  ring.setAttribute('aria-label', 'state of charge ' + (soc === null || soc === undefined ? 'unknown' : soc + ' %'));
  $('pack-v').textContent = num(st.pack_voltage_v, 2) + ' V';
  const cur = $('current');
  cur.textContent = signed(st.current_a, 1) + ' A';
  cur.className = st.current_a > 0 ? 'chg' : st.current_a < 0 ? 'dis' : '';
  $('power').textContent = signed(st.power_w, 0) + ' W';
  $('ah').textContent = num(st.remaining_ah, 1) + ' / ' + num(st.capacity_ah, 1) + ' Ah';
  const e = S.energy || {};
  $('ttf').textContent = dur(e.time_to_full_s);
  $('tte').textContent = dur(e.time_to_empty_s);
  let d = '';
  if (st.current_a > 0) d = 'Charging.';
  else if (st.current_a < 0) d = 'Discharging.';
  else if (st.current_a === 0) d = 'Idle: no current.';
  $('direction').textContent = d + ' Current and power are positive while charging, negative while discharging.';
}

function renderCells(st) {
  const cells = st.cell_voltages_v;
  const ol = $('cells');
  if (!cells || !cells.length) {
    ol.textContent = '';
    $('cell-summary').textContent = 'No cell data yet.';
    return;
  }
  const min = st.cell_min_v;
  const max = st.cell_max_v;
  const avg = st.cell_avg_v !== null && st.cell_avg_v !== undefined ? st.cell_avg_v : (min + max) / 2;
  // The bars span the cells' spread, but never less than ±50 mV around the
  // average: a balanced pack looks balanced.
  const lo = Math.min(min, avg - 0.05) - 0.01;
  const hi = Math.max(max, avg + 0.05) + 0.01;
  const bal = new Set(st.balancing_cells || []);
  $('cell-summary').innerHTML = 'lowest <b>' + num(min, 3) + ' V</b> (cell ' + esc(st.cell_min_index) +
    ') · highest <b>' + num(max, 3) + ' V</b> (cell ' + esc(st.cell_max_index) + ') · Δ <b>' +
    num(st.cell_delta_v * 1000, 0) + ' mV</b> · average ' + num(avg, 3) + ' V' +
    (bal.size ? ' · balancing ' + bal.size : '');
  ol.className = 'cells' + (cells.length > 12 ? ' many' : '');
  let html = '';
  cells.forEach((v, i) => {
    const n = i + 1;
    const cls = [];
    const words = [];
    if (n === st.cell_min_index) { cls.push('min'); words.push('lowest'); }
    if (n === st.cell_max_index) { cls.push('max'); words.push('highest'); }
    if (bal.has(n)) { cls.push('bal'); words.push('balancing'); }
    const w = v === null ? 0 : Math.max(2, Math.min(100, ((v - lo) / (hi - lo)) * 100));
    html += '<li class="' + cls.join(' ') + '" data-cell="' + n + '"><span class="n">' + n + '</span>' +
      '<span class="bar" aria-hidden="true"><i style="width:' + w.toFixed(1) + '%"></i></span>' +
      '<span class="v">' + num(v, 3) + '</span><span class="sr">V' + (words.length ? ', ' + words.join(', ') : '') +
      '</span></li>';
  });
  ol.innerHTML = html;
}

function renderTemps(st) {
  const items = [];
  if (st.mosfet_temp_c !== null && st.mosfet_temp_c !== undefined) items.push(['MOSFET', st.mosfet_temp_c]);
  if (st.balancer_temp_c !== null && st.balancer_temp_c !== undefined) items.push(['Balancer', st.balancer_temp_c]);
  (st.temperatures_c || []).forEach((t, i) => {
    if (t !== null) items.push(['Probe ' + (i + 1), t]);
  });
  $('temps').innerHTML = items.length
    ? items.map((t) => '<li><small>' + esc(t[0]) + '</small><b>' + esc(num(t[1], 0)) + ' °C</b></li>').join('')
    : '<li>No temperature data yet.</li>';
}

// -- BMS switches ---------------------------------------------------------------------------

const SWITCHES = [
  ['charge_mos', 'Charge MOSFET', 'charge', 'the charge MOSFET', 'The BMS stops charging the pack until it is turned on again.'],
  ['discharge_mos', 'Discharge MOSFET', 'discharge', 'the discharge MOSFET', 'Everything the pack powers loses power until it is turned on again.'],
  ['balancer', 'Balancer', 'balancer', 'the balancer', 'The BMS stops balancing the cells.'],
];

function buildSwitches() {
  const box = $('switches');
  for (const [key, label, cmd, what, offText] of SWITCHES) {
    const row = el('div', 'switch');
    row.id = 'sw-' + key;
    const info = el('div');
    info.appendChild(el('span', 'name', label));
    const state = el('span', 'state off', '—');
    state.dataset.role = 'state';
    info.appendChild(state);
    const text = el('div', 'text', '');
    text.dataset.role = 'text';
    info.appendChild(text);
    row.appendChild(info);
    const btns = el('div', 'btns');
    row.appendChild(btns);
    const on = el('button', '', 'On');
    on.type = 'button';
    on.setAttribute('aria-label', label + ' on');
    on.dataset.cmd = cmd + '-on';
    const off = el('button', '', 'Off');
    off.type = 'button';
    off.setAttribute('aria-label', label + ' off');
    off.dataset.cmd = cmd + '-off';
    on.onclick = () => command(cmd + '-on', 'Turn ' + what + ' on?', '', $('switches-reply'));
    off.onclick = () => command(cmd + '-off', 'Turn ' + what + ' off?', offText, $('switches-reply'), true);
    btns.appendChild(on);
    btns.appendChild(off);
    if (cmd === 'balancer') {
      const toggle = el('button', '', 'Toggle');
      toggle.type = 'button';
      toggle.hidden = true;
      toggle.setAttribute('aria-label', 'Balancer toggle');
      toggle.onclick = () => command('balancer-toggle', 'Toggle the balancer?', 'This BMS (old protocol) only knows a toggle.', $('switches-reply'));
      btns.appendChild(toggle);
    }
    box.appendChild(row);
  }
  $('cmd-send').onclick = () => {
    const name = $('cmd-select').value;
    const text = $('cmd-select').selectedOptions[0].textContent;
    command(name, 'Send “' + text + '” to the BMS?', 'The bridge sends it only if its settings allow this command.', $('switches-reply'), true);
  };
}

function renderSwitches(st) {
  const old = S.link && S.link.protocol === 'old';
  for (const [key] of SWITCHES) {
    const row = $('sw-' + key);
    const v = st[key];
    const state = row.querySelector('[data-role=state]');
    const text = row.querySelector('[data-role=text]');
    if (!v) {
      state.textContent = '—';
      state.className = 'state off';
      text.textContent = '';
    } else {
      const fault = !v.on && v.code !== 0 && !/manual/i.test(v.text || '');
      state.textContent = v.on ? 'ON' : 'OFF';
      state.className = 'state ' + (v.on ? 'on' : fault ? 'fault' : 'off');
      text.textContent = v.text || '';
    }
    if (key === 'balancer') {
      for (const b of row.querySelectorAll('button')) b.hidden = old ? !!b.dataset.cmd : !b.dataset.cmd;
    }
  }
}

// -- outputs --------------------------------------------------------------------------------

function heldWords(o) {
  const r = o.reason || '';
  switch (o.held_by) {
    case 'rule': return 'its rule (' + r + ')';
    case 'mode': return 'its mode: always ' + (r === 'mode on' ? 'on' : 'off');
    case 'override': return 'a manual override';
    case 'timing': return 'a timing limit (' + r + ')';
    case 'exercise': return 'its periodic exercise run';
    case 'fail-safe': return 'its fail-safe state (' + r.replace('fail-safe: ', '') + ')';
    case 'latch': return 'a latched trip: reset it to re-arm the rule';
    case 'interlock': return 'an interlock with another output (' + r + ')';
    case 'boot': return 'the boot hold: it keeps its boot state until the first fresh BMS data';
    case 'safe mode': return 'safe mode: it stays at its fail-safe state';
    default: return (o.held_by || 'nothing') + (r ? ' (' + r + ')' : '');
  }
}

function relayWords(o) {
  if (o.relay === null || o.relay === undefined) return 'No pin on this board: nothing is switched.';
  let t = 'Relay ' + o.relay + ' (pin ' + (o.pin_asserted ? 'asserted' : 'not asserted') + ')';
  if (o.inverted) t += ' — a normally energised output: energised means off';
  return t + '.';
}

function overrideWords(o) {
  if (!o.override) return '';
  let t = 'Manual override ' + o.override.toUpperCase();
  if (o.override_expires_s === null || o.override_expires_s === undefined) return t + ' until released.';
  const left = o.override_expires_s - (Date.now() - gotAt) / 1000;
  return t + ', ends in ' + span(left) + ' (at ' + hhmm(new Date(Date.now() + left * 1000)) + ').';
}

function buildOutputs(list) {
  const box = $('outputs');
  box.textContent = '';
  list.forEach((o, i) => {
    const name = 'DO' + (i + 1) + ' ' + o.name;
    const card = el('article', 'output');
    card.id = 'out-' + i;
    card.setAttribute('aria-label', name);
    const head = el('header');
    head.appendChild(el('b', '', name));
    const state = el('span', 'state', '');
    state.dataset.role = 'state';
    head.appendChild(state);
    card.appendChild(head);
    for (const role of ['held', 'relay', 'override', 'sense']) {
      const p = el('p');
      p.dataset.role = role;
      card.appendChild(p);
    }
    const ctl = el('div', 'ctl');
    const expId = 'exp-' + i;
    const on = el('button', '', 'On');
    const off = el('button', '', 'Off');
    const lab = el('label', '', 'for');
    lab.htmlFor = expId;
    const exp = el('select');
    exp.id = expId;
    for (const [s, t] of EXPIRIES) {
      const opt = el('option', '', t);
      opt.value = s;
      exp.appendChild(opt);
    }
    exp.value = '3600';
    const release = el('button', '', 'Release');
    const reset = el('button', '', 'Reset trip');
    const modeId = 'mode-' + i;
    const mlab = el('label', '', 'mode');
    mlab.htmlFor = modeId;
    const msel = el('select');
    msel.id = modeId;
    for (const m of ['auto', 'on', 'off']) {
      const opt = el('option', '', m === 'auto' ? 'auto (rules)' : 'always ' + m);
      opt.value = m;
      msel.appendChild(opt);
    }
    const mset = el('button', '', 'Set mode');
    for (const b of [on, off, release, reset, mset]) {
      b.type = 'button';
      b.setAttribute('aria-label', name + ' ' + b.textContent.toLowerCase());
    }
    reset.hidden = true;
    reset.dataset.role = 'reset';
    const reply = el('p', 'reply');
    reply.setAttribute('role', 'status');
    const force = (action) => {
      const s = Number(exp.value);
      const body = { output: i, action: action };
      if (s) body.expiry_s = s;
      const howLong = s ? 'for ' + exp.selectedOptions[0].textContent : 'until released';
      outputAction(body, 'Switch ' + name + ' ' + action.toUpperCase() + ' ' + howLong + '?',
        'This overrides its mode and rules (interlocks still apply).', reply);
    };
    on.onclick = () => force('on');
    off.onclick = () => force('off');
    release.onclick = () => outputAction({ output: i, action: 'release' }, 'Release the override of ' + name + '?',
      'Its mode and rules decide again.', reply);
    reset.onclick = () => outputAction({ output: i, action: 'reset' }, 'Reset the latched trip of ' + name + '?', '', reply);
    mset.onclick = () => outputAction({ output: i, action: 'mode', mode: msel.value },
      'Set ' + name + ' to mode “' + msel.selectedOptions[0].textContent + '”?',
      'This clears an override. It lasts until the bridge restarts; settings.json keeps a mode for good.', reply);
    for (const n of [on, off, lab, exp, release, reset, mlab, msel, mset]) ctl.appendChild(n);
    card.appendChild(ctl);
    card.appendChild(reply);
    box.appendChild(card);
  });
}

function renderOutputs(list) {
  const names = list.map((o) => o.name).join('\n');
  if (names !== outputNames) {
    outputNames = names;
    buildOutputs(list);
  }
  list.forEach((o, i) => {
    const card = $('out-' + i);
    const state = card.querySelector('[data-role=state]');
    state.textContent = o.state === 'on' ? 'ON' : 'OFF';
    state.className = 'state ' + (o.state === 'on' ? 'on' : 'off');
    card.querySelector('[data-role=held]').textContent =
      (o.state === 'on' ? 'On' : 'Off') + ', held by ' + heldWords(o) + '.';
    card.querySelector('[data-role=relay]').textContent = relayWords(o);
    const ov = card.querySelector('[data-role=override]');
    ov.textContent = overrideWords(o);
    ov.hidden = !o.override;
    const sense = card.querySelector('[data-role=sense]');
    sense.textContent = o.sense_alarm ? 'Sense alarm: the relay does not follow what the bridge writes.' : '';
    sense.className = o.sense_alarm ? 'alarm' : '';
    sense.hidden = !o.sense_alarm;
    card.querySelector('[data-role=reset]').hidden = o.held_by !== 'latch';
  });
}

// -- ACC, energy, link ------------------------------------------------------------------------

function renderAcc(a) {
  if (!a) {
    $('acc-text').textContent = 'No ACC control on this bridge (safe mode or no ACC pin).';
    kv($('acc-kv'), []);
    return;
  }
  $('acc-text').textContent = a.text ? a.text.charAt(0).toUpperCase() + a.text.slice(1) : a.state;
  kv($('acc-kv'), [
    ['State', a.state],
    ['ACC line', a.acc === null ? '—' : a.acc ? 'high (driven)' : 'low'],
    ['Isolated supply', a.supply === null ? '—' : a.supply ? 'on' : 'off'],
    ['Wakes', (a.wakes_ok || 0) + ' worked, ' + (a.wake_failures || 0) + ' failed'],
  ]);
}

function renderEnergy(e) {
  if (!e) {
    kv($('energy'), [['Counters', 'not kept on this bridge']]);
    return;
  }
  kv($('energy'), [
    ['Charged (in)', num(e.charged_kwh, 3) + ' kWh · ' + num(e.charged_ah, 1) + ' Ah'],
    ['Discharged (out)', num(e.discharged_kwh, 3) + ' kWh · ' + num(e.discharged_ah, 1) + ' Ah'],
    ['Time to full', dur(e.time_to_full_s)],
    ['Time to empty', dur(e.time_to_empty_s)],
    e.power_mismatch ? ['Note', 'the BMS power reading disagrees with voltage × current'] : null,
  ]);
}

function renderLinkDetails(l) {
  const st = l.stats || {};
  kv($('link-kv'), [
    ['State', (l.state || '—') + (l.live ? ' (live)' : ' (not live)')],
    ['Line', (l.line || '—') + (l.hint ? ': ' + l.hint : '')],
    ['Protocol', (l.protocol || '—') + (l.baud ? ' at ' + l.baud + ' baud' : '') + (l.passive ? ', listening (another master polls)' : '')],
    ['Data age', l.data_age_ms === null || l.data_age_ms === undefined ? 'no data yet' : span(dataAgeS())],
    ['Poll', (l.poll_ms || '—') + ' ms; reply ' + (l.reply_ms === null ? '—' : l.reply_ms + ' ms') + ', timeout ' + (l.reply_timeout_ms || '—') + ' ms'],
    ['Lost polls', l.loss_pct === null || l.loss_pct === undefined ? '—' : l.loss_pct + ' % of the last ' + l.window],
    ['Frames', (st.frames_ok || 0) + ' ok of ' + (st.polls || 0) + ' polls; ' + (st.timeouts || 0) + ' timeouts, ' + (st.checksum_errors || 0) + ' bad checksums'],
    l.last_error ? ['Last error', l.last_error.error + ', ' + span(l.last_error.age_ms / 1000) + ' ago'] : null,
  ]);
}

// -- health: errors, safe mode, Wi-Fi ----------------------------------------------------------

function banner(title, why) {
  const d = el('div', 'banner', title);
  if (why) d.appendChild(el('span', 'why', why));
  return d;
}

async function loadHealth() {
  const r = await get('/api/health');
  if (r.status !== 200) return;
  health = r.doc;
  const box = $('banners');
  box.textContent = '';
  if (health.safe_mode) box.appendChild(banner('SAFE MODE: the outputs are at their fail-safe state and the BMS link is off', health.safe_mode_reason));
  if (health.settings_error) box.appendChild(banner('Settings rejected', health.settings_error));
  if (health.state_error) box.appendChild(banner('Saved state damaged', health.state_error));
  renderWifi(health.wifi);
}

function renderWifi(w) {
  const pill = $('wifi');
  if (!w || typeof w !== 'object') {
    pill.hidden = true;
    return;
  }
  pill.hidden = false;
  let text = 'Wi-Fi';
  let cls = 'pill';
  if (w.mode === 'ap') {
    text += ' access point ' + (w.ssid || '');
    cls += ' warn';
  } else if (w.ip) {
    text += ' ' + (w.ssid || '') + (w.rssi !== null && w.rssi !== undefined ? ' ' + w.rssi + ' dBm' : '');
    cls += w.rssi !== null && w.rssi !== undefined && w.rssi < -80 ? ' warn' : ' ok';
  } else {
    text += ' ' + (w.mode === 'off' ? 'off' : 'not connected');
    cls += ' warn';
  }
  pill.textContent = text.trim();
  pill.className = cls;
  pill.title = [w.mode && 'mode ' + w.mode, w.ip && 'address ' + w.ip, w.reason].filter((x) => x).join(' · ');
}

// -- events and the BMS log -------------------------------------------------------------------

async function loadEvents() {
  const r = await get('/api/events?limit=32');
  if (r.status !== 200) return;
  const ol = $('events');
  ol.textContent = '';
  for (const e of r.doc.events || []) {
    const li = el('li', '', e.text);
    let when = '';
    if (e.earlier_boot) when = 'earlier boot' + (e.time ? ' · ' + new Date(e.time).toLocaleString() : '');
    else if (e.age_ms !== null && e.age_ms !== undefined) {
      when = hhmm(new Date(Date.now() - e.age_ms)) + ' · ' + span(e.age_ms / 1000) + ' ago';
    } else if (e.time) when = new Date(e.time).toLocaleString();
    li.appendChild(el('time', '', when));
    ol.appendChild(li);
  }
  if (!ol.children.length) ol.appendChild(el('li', '', 'No events.'));
}

async function loadBmslog() {
  const r = await get('/api/bmslog');
  const note = $('bmslog-note');
  const ol = $('bmslog');
  ol.textContent = '';
  if (r.status === 404) {
    note.textContent = 'Not available: this firmware does not read the BMS system log.';
    return;
  }
  if (r.status !== 200) {
    note.textContent = 'Could not read the BMS log: ' + (r.doc.reason || 'HTTP ' + r.status);
    return;
  }
  const d = r.doc;
  if (!d.supported) {
    note.textContent = 'Not available: ' + (d.reason || 'this BMS does not keep a log the bridge can read') + '.';
    return;
  }
  note.textContent = d.source ? 'From ' + d.source + '.' : '';
  for (const e of d.entries || []) {
    const li = el('li', '', e.text + (e.cell ? ' (cell ' + e.cell + ')' : ''));
    li.appendChild(el('small', '', 'entry ' + e.slot + (e.table ? ' · ' + e.table : '') + ' · code ' + e.code));
    ol.appendChild(li);
  }
  if (!ol.children.length) ol.appendChild(el('li', '', 'The BMS log is empty.'));
}

// -- the chart ----------------------------------------------------------------------------------

const CHARTS = [
  ['Pack voltage', 'V', [1], 2],
  ['Current (+ = charging)', 'A', [2], 1],
  ['State of charge', '%', [3], 0, [0, 100]],
  ['Lowest and highest cell', 'V', [4, 5], 3],
];

let historyRetry = null;
async function loadHistory() {
  const r = await get('/api/history');
  clearTimeout(historyRetry);
  if (r.status !== 200) {
    $('chart-note').textContent = r.status === 404 ? 'This bridge keeps no history.' : 'History not available right now.';
    // A busy bridge (503) or a lost answer: ask again soon, not in 30 s.
    if (r.status !== 404) historyRetry = setTimeout(loadHistory, 3000);
    return;
  }
  hist = r.doc;
  renderCharts();
}

function renderCharts() {
  const h = hist;
  const box = $('charts');
  box.textContent = '';
  const pts = h.points || [];
  const windowS = h.period_s * h.size;
  $('chart-note').textContent = pts.length
    ? pts.length + (pts.length === 1 ? ' sample' : ' samples') + ', one every ' + h.period_s + ' s while the BMS link is live; gaps are times without live data.'
    : 'No samples yet: the bridge keeps one every ' + h.period_s + ' s while the BMS link is live.';
  if (!pts.length) return;
  const W = 300;
  const H = 100;
  CHARTS.forEach(([title, unit, cols, dec, fixed], ci) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of pts) for (const c of cols) if (p[c] !== null) { lo = Math.min(lo, p[c]); hi = Math.max(hi, p[c]); }
    if (lo === Infinity) return;
    const [ylo, yhi] = fixed || (hi - lo < 1e-9 ? [lo - 1, hi + 1] : [lo - (hi - lo) * 0.1, hi + (hi - lo) * 0.1]);
    const x = (age) => (W * (1 - age / windowS)).toFixed(1);
    const y = (v) => (H - ((v - ylo) / (yhi - ylo)) * H).toFixed(1);
    let svg = '<line class="grid" x1="0" x2="300" y1="25" y2="25"/><line class="grid" x1="0" x2="300" y1="50" y2="50"/><line class="grid" x1="0" x2="300" y1="75" y2="75"/>';
    if (ylo < 0 && yhi > 0) svg += '<line class="grid" x1="0" x2="300" y1="' + y(0) + '" y2="' + y(0) + '" stroke-dasharray="4 3"/>';
    cols.forEach((c, k) => {
      const color = 'var(--c' + (cols.length > 1 ? (k ? 2 : 1) : ci + 1) + ')';
      let run = [];
      const flush = () => {
        if (run.length > 1) svg += '<polyline style="stroke:' + color + '" points="' + run.join(' ') + '"/>';
        else if (run.length === 1) {
          const [px, py] = run[0].split(',');
          svg += '<circle cx="' + px + '" cy="' + py + '" r="2.5" style="fill:' + color + '"/>';
        }
        run = [];
      };
      let prev = null;
      for (const p of pts) {
        if (p[c] === null || (prev !== null && prev - p[0] > 2.5 * h.period_s)) flush();
        if (p[c] !== null) run.push(x(p[0]) + ',' + y(p[c]));
        prev = p[0];
      }
      flush();
    });
    const last = pts[pts.length - 1];
    const latest = cols.map((c) => num(last[c], dec)).join(' / ');
    const div = el('div', 'chart');
    div.innerHTML = '<h3>' + esc(title) + ' <span>' + esc(num(lo, dec) + '–' + num(hi, dec) + ' ' + unit) + '</span></h3>' +
      '<svg viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label="' +
      esc(title + ' over the last hour: from ' + num(lo, dec) + ' to ' + num(hi, dec) + ' ' + unit + ', latest ' + latest + ' ' + unit) +
      '">' + svg + '</svg><div class="axis" aria-hidden="true"><span>−' + Math.round(windowS / 60) + ' min</span><span>now</span></div>';
    box.appendChild(div);
  });
}

// -- BMS parameters -------------------------------------------------------------------------------

let paramsTries = 0;

function decimals(step) {
  if (!step || step >= 1) return 0;
  return Math.min(4, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
}
function pval(p, v) {
  return v === null || v === undefined ? '—' : Number(v).toFixed(decimals(p.step)) + (p.unit ? ' ' + p.unit : '');
}

async function loadParams(refresh) {
  const status = $('params-status');
  if (refresh) paramsTries = 0;
  status.textContent = refresh ? 'Reading the parameters from the BMS…' : 'Loading…';
  const r = await get('/api/params' + (refresh ? '?refresh=1' : ''));
  if (r.status === 404) {
    status.textContent = 'Not available: this firmware cannot read the BMS parameters.';
    $('params-refresh').hidden = true;
    return;
  }
  if (r.status !== 200) {
    status.textContent = 'Could not read the parameters: ' + (r.doc.reason || 'HTTP ' + r.status);
    return;
  }
  const d = r.doc;
  if (d.reading && paramsTries < 40) {
    paramsTries += 1;
    status.textContent = 'Reading the parameters from the BMS…';
    setTimeout(() => loadParams(false), 1500);
    if (!(d.params || []).length) return;
  }
  let text = d.error ? 'The last read failed: ' + d.error : '';
  if (!d.error && d.read_at) text = 'Read from the BMS at ' + new Date(d.read_at).toLocaleString() + (d.protocol ? ' (' + d.protocol + ' protocol)' : '') + '.';
  if (!d.reading) status.textContent = text;
  renderParams(d.params || []);
}

function renderParams(params) {
  const box = $('params');
  box.textContent = '';
  const groups = GROUPS.concat(params.map((p) => p.group).filter((g) => GROUPS.indexOf(g) < 0));
  for (const g of groups) {
    const rows = params.filter((p) => p.group === g);
    if (!rows.length) continue;
    const sec = el('div', 'pgroup');
    sec.appendChild(el('h3', '', g));
    for (const p of rows) sec.appendChild(paramRow(p));
    box.appendChild(sec);
  }
  if (!box.children.length) box.appendChild(el('p', 'note', 'No parameters yet.'));
}

function paramRow(p) {
  const row = el('div', 'param');
  row.dataset.key = p.key;
  const name = el('div', 'pname', p.name);
  if (p.verified === false) {
    const tag = el('span', 'tag', 'unverified');
    tag.title = 'The protocol reference does not settle this value’s scale or meaning for this BMS.';
    name.appendChild(tag);
  }
  const range = p.writable && p.min !== null && p.max !== null ? ' · ' + pval(p, p.min) + ' to ' + pval(p, p.max) : '';
  name.appendChild(el('small', '', p.key + range + (p.writable ? '' : ' · read-only')));
  const val = el('div', 'pval');
  const shown = el('span', '', pval(p, p.value));
  shown.dataset.role = 'value';
  val.appendChild(shown);
  row.appendChild(name);
  row.appendChild(val);
  const reply = el('p', 'reply');
  reply.setAttribute('role', 'status');
  if (p.writable) {
    const edit = el('button', '', 'Change');
    edit.type = 'button';
    edit.setAttribute('aria-label', 'Change ' + p.name);
    edit.onclick = () => {
      if (row.querySelector('form')) return;
      row.insertBefore(paramForm(p, shown, reply), reply);
    };
    val.appendChild(document.createTextNode(' '));
    val.appendChild(edit);
  }
  row.appendChild(reply);
  return row;
}

function paramCheck(p, text) {
  if (!/^\s*-?\d+(\.\d+)?\s*$/.test(text)) return 'Enter a number.';
  const v = Number(text);
  if (p.min !== null && p.min !== undefined && v < p.min) return 'At least ' + pval(p, p.min) + '.';
  if (p.max !== null && p.max !== undefined && v > p.max) return 'At most ' + pval(p, p.max) + '.';
  if (p.step) {
    const base = p.min !== null && p.min !== undefined ? p.min : 0;
    const k = (v - base) / p.step;
    if (Math.abs(k - Math.round(k)) > 1e-6) return 'In steps of ' + pval(p, p.step) + '.';
  }
  return '';
}

function paramForm(p, shown, reply) {
  const f = el('form');
  const id = 'p-' + p.key;
  const lab = el('label', '', 'New value' + (p.unit ? ' (' + p.unit + ')' : ''));
  lab.htmlFor = id;
  const input = el('input');
  input.id = id;
  input.type = 'number';
  input.inputMode = 'decimal';
  if (p.min !== null && p.min !== undefined) input.min = p.min;
  if (p.max !== null && p.max !== undefined) input.max = p.max;
  input.step = p.step || 'any';
  input.value = p.value === null || p.value === undefined ? '' : p.value;
  const write = el('button', 'primary', 'Write…');
  write.type = 'submit';
  const cancel = el('button', '', 'Cancel');
  cancel.type = 'button';
  cancel.onclick = () => f.remove();
  const err = el('span', 'error');
  err.setAttribute('role', 'alert');
  f.noValidate = true; // checked here, with the reason shown
  f.onsubmit = async (ev) => {
    ev.preventDefault();
    const problem = paramCheck(p, input.value);
    err.textContent = problem;
    if (problem) return;
    const v = Number(input.value);
    if (!(await ensureToken())) return;
    const ok = await ask({
      title: 'Write a BMS parameter?',
      text: p.name + ': ' + pval(p, p.value) + ' → ' + pval(p, v) + '. The BMS uses the new value at once.',
      ok: 'Write', danger: true,
    });
    if (!ok) return;
    const res = await post('/api/params', { key: p.key, value: v, confirm: 'write-param' }, reply, 'write ' + p.key);
    if (res && res.doc.ok) {
      p.value = res.doc.value;
      shown.textContent = pval(p, p.value);
      setReply(reply, '✓ Written; the BMS reads back ' + pval(p, res.doc.value) + '.', 'okay');
      f.remove();
    }
  };
  f.appendChild(lab);
  f.appendChild(input);
  f.appendChild(write);
  f.appendChild(cancel);
  f.appendChild(err);
  setTimeout(() => input.focus(), 0);
  return f;
}

// -- the token, dialogs, requests ------------------------------------------------------------------

function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch (e) {
    return memToken;
  }
}
function saveToken(t) {
  memToken = t;
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* private mode: kept in memory for this page */ }
  renderToken();
}
function renderToken() {
  const has = !!token();
  $('token-state').textContent = has ? 'kept in this browser' : 'not set';
  $('token-forget').hidden = !has;
  $('token-set').textContent = has ? 'Change token…' : 'Set token…';
}

// A modal question: resolves true (or the typed value when `input` is given)
// or null when cancelled.
function ask(o) {
  return new Promise((resolve) => {
    const d = $('dlg');
    const input = $('dlg-input');
    $('dlg-title').textContent = o.title;
    $('dlg-text').textContent = o.text || '';
    $('dlg-field').hidden = !o.input;
    $('dlg-error').textContent = '';
    if (o.input) {
      $('dlg-label').textContent = o.input.label;
      input.type = o.input.type || 'text';
      input.value = o.input.value || '';
    }
    const ok = $('dlg-ok');
    ok.textContent = o.ok || 'OK';
    ok.className = o.danger ? 'danger' : 'primary';
    d.returnValue = '';
    $('dlg-form').onsubmit = (ev) => {
      const err = o.input && o.input.check ? o.input.check(input.value) : '';
      if (err) {
        ev.preventDefault();
        $('dlg-error').textContent = err;
      }
    };
    $('dlg-cancel').onclick = () => d.close('cancel');
    d.onclose = () => {
      d.onclose = null;
      resolve(d.returnValue === 'ok' ? (o.input ? input.value : true) : null);
    };
    d.showModal();
    (o.input ? input : ok).focus();
  });
}

async function ensureToken() {
  if (token()) return true;
  return setTokenDialog();
}

async function setTokenDialog() {
  const t = await ask({
    title: 'Control token',
    text: 'Controls need the bridge’s API token (api_token in settings.json). This browser keeps it until you forget it.',
    input: { label: 'API token', type: 'password', check: (v) => (v.trim() ? '' : 'Enter the token.') },
    ok: 'Save',
  });
  if (t === null) return false;
  saveToken(t.trim());
  return true;
}

// One request at a time (the event stream aside): the bridge answers two at
// once and every request in flight costs it heap, so the page never asks for
// more than it needs. A long poll goes around the queue (it waits).
let queue = Promise.resolve();
function request(method, path, body, auth, timeoutMs) {
  const p = queue.then(() => send(method, path, body, auth, timeoutMs));
  queue = p.catch(() => null);
  return p;
}

async function send(method, path, body, auth, timeoutMs) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) headers.Authorization = 'Bearer ' + token();
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs || 15000);
  let r;
  try {
    // (No cache: 'no-store': it would add two request headers; the API's
    // replies carry no validators, so nothing of them is cached anyway.)
    r = await fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', signal: ctl.signal });
  } catch (e) {
    clearTimeout(timer);
    return { status: 0, doc: { ok: false, reason: 'no answer from the bridge' } };
  }
  let doc;
  try {
    doc = await r.json();
  } catch (e) {
    doc = { ok: r.ok, reason: r.ok ? null : 'HTTP ' + r.status };
  }
  clearTimeout(timer);
  return { status: r.status, doc: doc || {} };
}

function get(path) {
  return request('GET', path);
}

// A control request with the token; every reply's reason is shown in `reply`.
async function post(path, body, reply, label) {
  if (!(await ensureToken())) {
    setReply(reply, 'Not sent: controls need the API token.', 'fail');
    return null;
  }
  setReply(reply, label + ': sending…', '');
  const buttons = document.querySelectorAll('main button');
  for (const b of buttons) b.disabled = true;
  let res;
  try {
    res = await request('POST', path, body, true, 45000);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
  const d = res.doc;
  if (res.status === 401) {
    saveToken('');
    setReply(reply, label + ': the bridge refused the token (401: ' + (d.reason || 'unauthorized') + '). Set it again.', 'fail');
    return res;
  }
  const ok = res.status === 200 && d.ok !== false;
  let text = (ok ? '✓ ' : '✗ ') + label + ': ' + (ok ? d.state || 'done' : (res.status ? 'refused (' + res.status + ')' : 'failed'));
  if (d.reason) text += ' — ' + d.reason;
  if (d.note) text += ' — ' + d.note;
  if (ok && d.output) text += ' — now ' + String(d.output.state).toUpperCase() + ' (' + d.output.reason + ')';
  if (d.attempts > 1) text += ' (' + d.attempts + ' attempts)';
  setReply(reply, text, ok ? 'okay' : 'fail');
  setTimeout(loadEvents, 300);
  return res;
}

async function command(name, question, why, reply, danger) {
  if (!(await ensureToken())) return;
  if (!(await ask({ title: question, text: why, ok: 'Send ' + name, danger: !!danger }))) return;
  await post('/api/command', { command: name, confirm: name }, reply, name);
}

async function outputAction(body, question, why, reply) {
  if (!(await ensureToken())) return;
  if (!(await ask({ title: question, text: why, ok: 'Yes' }))) return;
  await post('/api/outputs', body, reply, 'DO' + (body.output + 1) + ' ' + body.action + (body.mode ? ' ' + body.mode : ''));
}

// -- the feed: event stream, long poll as fallback -------------------------------------------------

function feed(text) {
  $('feed').textContent = text;
}

function startStream() {
  mode = 'stream';
  feed('connecting to the live stream…');
  const es = new EventSource('/api/stream');
  source = es;
  es.addEventListener('status', (ev) => {
    let d;
    try {
      d = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    feed('updates: live stream');
    got(d);
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      // Refused (all streams taken, or no stream on this bridge): long poll,
      // and try the stream again in a minute.
      source = null;
      sseAgainAt = Date.now() + 60000;
      startPolling();
    } else {
      feed('stream interrupted, reconnecting…');
    }
  };
}

async function startPolling() {
  if (polling) return;
  polling = true;
  mode = 'poll';
  feed('updates: polling');
  while (mode === 'poll') {
    const q = S ? '?since=' + S.generation + '&wait_ms=25000' : '';
    const r = await send('GET', '/api/status' + q, undefined, false, 35000);
    if (r.status === 200 && r.doc.link) {
      feed('updates: polling (no live stream)');
      got(r.doc);
    } else {
      feed(r.status ? 'bridge busy (HTTP ' + r.status + '), retrying…' : 'no answer from the bridge, retrying…');
      await sleep(2000);
    }
    if (window.EventSource && Date.now() > sseAgainAt) break;
  }
  polling = false;
  if (mode === 'poll') startStream();
}

// -- start -----------------------------------------------------------------------------------------

function init() {
  buildSwitches();
  renderToken();
  $('token-set').onclick = setTokenDialog;
  $('token-forget').onclick = () => saveToken('');
  $('acc-wake').onclick = async () => {
    if (!(await ensureToken())) return;
    if (!(await ask({ title: 'Wake the BMS?', text: 'The bridge pulses ACC (switching the isolated supply on first when it is on demand).', ok: 'Wake' }))) return;
    post('/api/acc/wake', {}, $('acc-reply'), 'ACC wake');
  };
  $('params-details').addEventListener('toggle', () => {
    if ($('params-details').open) loadParams(false);
  });
  $('params-refresh').onclick = () => loadParams(true);
  if (window.EventSource) startStream();
  else startPolling();
  loadHealth();
  loadEvents();
  loadHistory();
  loadBmslog();
  setInterval(render, 1000);
  setInterval(loadHealth, 10000);
  setInterval(loadEvents, 15000);
  setInterval(loadHistory, 30000);
  setInterval(loadBmslog, 120000);
}

init();
