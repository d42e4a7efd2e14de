import { createHash } from 'node:crypto';

/**
 * The dashboard's only script, served from this origin (CSP `script-src 'self'`). Enhancements
 * only, every action works without it: copy buttons (hidden until this runs), a confirm dialog on
 * forms marked `data-confirm`, and the organization switcher submitting on change.
 */
export const DASHBOARD_JS = `'use strict';
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    var target = document.getElementById(button.getAttribute('data-copy'));
    if (!target || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () { announce(button, 'Copied'); },
        function () { announce(button, 'Copy failed: select the key and copy it by hand'); }
      );
    });
  });
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  });
  document.querySelectorAll('form[data-autosubmit]').forEach(function (form) {
    form.querySelectorAll('[data-js-hide]').forEach(function (el) { el.hidden = true; });
    form.querySelectorAll('select').forEach(function (select) {
      select.addEventListener('change', function () { form.submit(); });
    });
  });
});
function announce(button, text) {
  var status = document.getElementById(button.getAttribute('data-status') || '');
  var label = button.textContent;
  if (status) status.textContent = text;
  button.textContent = text === 'Copied' ? 'Copied' : 'Copy';
  setTimeout(function () { button.textContent = label; }, 2000);
}
`;

/** A strong validator: the script changes only with a new server build. */
export const DASHBOARD_JS_ETAG = `"${createHash('sha256').update(DASHBOARD_JS).digest('base64url').slice(0, 22)}"`;
