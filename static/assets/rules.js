// The server's input rules, checked in the form before sending, so a person sees the
// same message the server would give without a round trip. The server still decides:
// these only spare a refusal. Each check returns null, or an error shaped like the
// server's ({code, details:{field}}) for errorText.

/** money::parse_cents, positive: up to 10 integer digits and 2 decimals, not zero
 *  (the same pattern the OpenAPI document gives amounts). */
const AMOUNT = /^(0*[1-9][0-9]{0,9}(\.[0-9]{1,2})?|0+\.(0[1-9]|[1-9][0-9]?))$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export const problem = (code, field) => ({ code, details: { field } });

/** A positive amount with at most 2 decimals, as the server parses it. */
export function checkAmount(text, field, code = 'VALIDATION_ERROR') {
  return AMOUNT.test(String(text).trim()) ? null : problem(code, field);
}

/** An amount the server takes as money::parse_cents does: a well-formed zero or
 *  negative amount is `notPositive` (INVALID_RECHARGE_AMOUNT…), anything else malformed
 *  is INVALID_AMOUNT; both name `field`, as the server's answer would. */
export function checkPositiveAmount(text, field, notPositive) {
  const v = String(text).trim();
  if (AMOUNT.test(v)) return null;
  const m = /^(-?)([0-9]+)(\.[0-9]{1,2})?$/.exec(v);
  if (m && m[2].replace(/^0+/, '').length <= 10 && (m[1] || /^[0.]+$/.test(m[2] + (m[3] || '')))) {
    return problem(notPositive, field);
  }
  return problem('INVALID_AMOUNT', field);
}

/** The cents of an amount `checkAmount` accepted (exact: no floating point). */
export function cents(text) {
  const [int, frac = ''] = String(text).trim().split('.');
  return BigInt(int) * 100n + BigInt((frac + '00').slice(0, 2));
}

// The white space Rust's str::trim removes (Unicode White_Space). JavaScript's trim()
// differs: it also removes U+FEFF and keeps U+0085 (NEL, a control character Rust counts
// as white space).
const SERVER_WS = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const SERVER_TRIM = new RegExp(`^${SERVER_WS}+|${SERVER_WS}+$`, 'g');

/** Text of 1..max characters, not only white space, no control characters: the server
 *  trims what the form sends (already trimmed by JavaScript) once more, its own way. */
export function checkText(text, max, field) {
  const v = String(text).trim().replace(SERVER_TRIM, '');
  return v && [...v].length <= max && !CONTROL.test(v) ? null : problem('VALIDATION_ERROR', field);
}

/** A whole number in [min, max], written as digits only (blank is not zero). */
export function checkWhole(text, min, max, field) {
  const v = String(text).trim();
  if (!/^[0-9]{1,12}$/.test(v)) return problem('VALIDATION_ERROR', field);
  const n = Number(v);
  return n >= min && n <= max ? null : problem('VALIDATION_ERROR', field);
}

/** An id-like text: 1..max printable ASCII characters without spaces (validate::key). */
export function checkKey(text, max, field) {
  const v = String(text);
  return v.length >= 1 && v.length <= max && /^[!-~]+$/.test(v) ? null : problem('VALIDATION_ERROR', field);
}

/** A password as the policy wants it (auth::check_password_policy): 8..256 characters,
 *  no control characters. Not trimmed: spaces are part of a password. */
export function checkPassword(text, field = 'password') {
  const n = [...String(text)].length;
  return n >= 8 && n <= 256 && !CONTROL.test(text) ? null : problem('VALIDATION_ERROR', field);
}

/** Shows a form problem: the message, the field marked invalid and focused. */
export function refuse(box, control, err, show, text) {
  show(box, text(err));
  control.setAttribute('aria-invalid', 'true');
  control.focus();
}
