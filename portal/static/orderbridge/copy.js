/* A button with data-copy-target="<input id>" copies that input's value to the clipboard
 * (the API tokens page's one-time token) and says so next to it. */
(function () {
  'use strict';
  document.querySelectorAll('[data-copy-target]').forEach(function (button) {
    var input = document.getElementById(button.dataset.copyTarget);
    var state = document.getElementById('copy-state');
    function said(text) { if (state) { state.textContent = text; } }
    button.addEventListener('click', function () {
      input.focus();
      input.select();
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(input.value).then(function () {
          said('Copied to the clipboard.');
        }, function () {
          said(document.execCommand('copy') ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C to copy.');
        });
      } else {
        said(document.execCommand('copy') ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C to copy.');
      }
    });
  });
}());
