// A tiny element builder. Text always goes in as text (never as HTML).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form control. */
/** A loading placeholder: grey lines where the content will be, and `label` ("Loading…")
 *  for screen readers. */
export function skeleton(id, label) {
  return h('div', { class: 'skeleton', id, role: 'status' },
    h('span', { class: 'visually-hidden' }, label),
    h('div', { class: 'sk-line wide' }), h('div', { class: 'sk-line' }), h('div', { class: 'sk-block' }));
}

export function field(label, control) {
  return h('label', {}, label, control);
}

export function select(name, options, value) {
  return h('select', { name }, options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
}

/** A message area that screen readers announce. */
export function messageBox(id) {
  return h('div', { class: 'msg', role: 'status', 'aria-live': 'polite', id });
}

export function showMessage(box, text, kind = 'error') {
  box.className = `msg ${kind}`;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.textContent = text;
}

export function table(columns, rows, empty) {
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label)));
  const body = rows.length
    // data-label: the column's name beside each value when a phone shows rows as cards.
    ? rows.map((r) => h('tr', r.attrs || {}, columns.map((c) => h('td', {
      class: c.num ? 'num' : null,
      'data-label': typeof c.label === 'string' ? c.label : c.label?.textContent,
    }, c.cell(r.data ?? r)))))
    : [h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, empty))];
  return h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, head), h('tbody', {}, body)));
}

/** A modal asking for one line of text (a reason) before a dangerous action; resolves
 *  the trimmed text, or null when cancelled. `check` returns null or an error for
 *  errorText-like display via `describe`; focus starts in the text box. */
export function promptDialog(title, text, label, confirmLabel, cancelLabel, check, describe = (e) => e) {
  return new Promise((resolve) => {
    const input = h('input', { type: 'text', id: 'dlg-input', maxlength: 500, autocomplete: 'off' });
    const problemBox = h('p', { class: 'msg error', id: 'dlg-problem', role: 'alert', hidden: true });
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title', id: 'prompt-dialog' },
      h('h2', { id: 'dlg-title', text: title }),
      h('p', { text }),
      h('label', {}, label, input),
      problemBox,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'danger', id: 'dlg-confirm', onclick: confirm }, confirmLabel),
        h('button', { type: 'button', class: 'secondary', id: 'dlg-cancel', onclick: () => done(null) }, cancelLabel)));
    function confirm() {
      const bad = check ? check(input.value) : null;
      if (bad) { problemBox.textContent = describe(bad); problemBox.hidden = false; input.focus(); return; }
      done(input.value.trim());
    }
    function done(v) { dlg.close(); dlg.remove(); resolve(v); }
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(null); });
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

/** A modal confirmation built on <dialog>; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel, cancelLabel, danger = false) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title', id: 'confirm-dialog' },
      h('h2', { id: 'dlg-title', text: title }),
      h('p', { text }),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: danger ? 'danger' : null, id: 'dlg-confirm', onclick: () => done(true) }, confirmLabel),
        // A dangerous action starts on Cancel, so Enter alone never confirms it.
        h('button', { type: 'button', class: 'secondary', id: 'dlg-cancel', autofocus: danger, onclick: () => done(false) }, cancelLabel)));
    function done(ok) { dlg.close(); dlg.remove(); resolve(ok); }
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
  });
}
