/* The "Enter order" page: each line asks the quote endpoint for its price (the quantity
 * break applied), line total and stock per warehouse as the product or quantity changes;
 * "Add line" adds a row. Needs picker.js. */
(function () {
  'use strict';
  var form = document.getElementById('order-entry');
  if (!form) { return; }
  var body = document.querySelector('#entry-lines tbody');
  var totals = {};
  var currency = 'USD';

  function money(value) {
    return currency + ' ' + Number(value).toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }
  function showTotal() {
    var sum = Object.keys(totals).reduce(function (acc, key) { return acc + totals[key]; }, 0);
    document.getElementById('order-total').textContent = sum ? money(sum) : '';
  }
  function clear(row) {
    ['unit', 'unit-price', 'price-from', 'line-total', 'availability'].forEach(function (name) {
      row.querySelector('.' + name).textContent = '';
    });
    delete totals[row.dataset.row];
    showTotal();
  }
  function quote(row) {
    var product = row.querySelector('.product-id').value;
    var quantity = row.querySelector('.quantity').value.trim();
    if (!product || !/^\d+$/.test(quantity) || Number(quantity) < 1) { clear(row); return; }
    var customer = document.getElementById('customer_id').value;
    var url = form.dataset.quote + '?product_id=' + product + '&quantity=' + quantity +
      (customer ? '&customer_id=' + customer : '') + '&currency=' + currency;
    row.dataset.quoting = '1';
    fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        delete row.dataset.quoting;
        var q = answer.result;
        if (!q) { clear(row); row.querySelector('.availability').textContent = answer.message || ''; return; }
        row.querySelector('.unit').textContent = q.pack_size > 1 ? q.unit + ' of ' + q.pack_size : q.unit;
        row.querySelector('.unit-price').textContent = q.unit_price_text;
        row.querySelector('.price-from').textContent = q.price_source + (q.whole_packs ? '' : ' · not whole packs');
        row.querySelector('.line-total').textContent = q.line_total_text;
        var cell = row.querySelector('.availability');
        cell.textContent = q.warehouses.map(function (w) { return w.code + ': ' + w.available.toLocaleString('en-US'); }).join(', ') +
          (q.enough ? ' — enough' : ' — short, the rest would be backordered');
        cell.className = 'availability ' + (q.enough ? 'text-success' : 'text-warning');
        totals[row.dataset.row] = Number(q.line_total);
        showTotal();
        row.dataset.quoted = quantity;
      });
  }
  function watch(row) {
    var timer = null;
    row.querySelector('.quantity').addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { quote(row); }, 200);
    });
    row.addEventListener('picker:chosen', function () { quote(row); });
    row.addEventListener('picker:cleared', function () { clear(row); });
    if (row.querySelector('.product-id').value) { quote(row); }
  }
  document.getElementById('customer_label').addEventListener('picker:chosen', function (event) {
    currency = event.detail.currency || 'USD';
    var shipTo = document.getElementById('ship_to_label');
    shipTo.value = '';
    document.getElementById('ship_to_id').value = '';
    Array.prototype.forEach.call(body.rows, quote);
  });
  document.getElementById('add-line-row').addEventListener('click', function () {
    var last = body.rows[body.rows.length - 1];
    var n = Number(last.dataset.row) + 1;
    var row = last.cloneNode(true);
    row.dataset.row = String(n);
    row.cells[0].textContent = String(n);
    Array.prototype.forEach.call(row.querySelectorAll('input'), function (input) {
      input.id = input.id.replace(/_\d+$/, '_' + n);
      input.name = input.name.replace(/_\d+$/, '_' + n);
      input.value = '';
      input.obPicker = false;
      if (input.dataset.pickerTarget) { input.dataset.pickerTarget = input.dataset.pickerTarget.replace(/_\d+$/, '_' + n); }
      var label = input.getAttribute('aria-label');
      if (label) { input.setAttribute('aria-label', label.replace(/\d+$/, String(n))); }
    });
    Array.prototype.forEach.call(row.querySelectorAll('.ob-picker-list, .field-error'), function (el) { el.remove(); });
    Array.prototype.forEach.call(row.querySelectorAll('td'), function (td) { td.classList.remove('has-error'); });
    body.appendChild(row);
    clear(row);
    window.OrderbridgePicker.attachAll(row);
    watch(row);
    row.querySelector('.product-search').focus();
  });
  Array.prototype.forEach.call(body.rows, watch);
})();
