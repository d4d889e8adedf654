/* Orderbridge search-as-you-type picker (no dependencies, CSP-safe: no inline handlers).
 *
 * <input data-picker="/api/v1/lookup/product" data-picker-target="product_id"> searches the
 * lookup URL as the user types (q, limit) and lists the matches under the input; choosing one
 * (click, or arrows and Enter) writes its label into the input, its id into the hidden input
 * named by data-picker-target, and fires "picker:chosen" on the input with the match as
 * event.detail. Typing again clears the id and fires "picker:cleared".
 * A <select data-picker="..."> is hidden behind such an input and keeps the chosen option.
 * data-picker-param-<name>="#selector" sends that field's value as <name> (e.g. the customer
 * of a ship-to lookup); data-picker-min="0" searches on focus with nothing typed.
 * OrderbridgePicker.attachAll(root) attaches the pickers of added content (e.g. a new line).
 */
(function () {
  'use strict';
  var DELAY_MS = 150;

  function params(el) {
    var extra = [];
    Object.keys(el.dataset).forEach(function (key) {
      if (key.indexOf('pickerParam') !== 0) { return; }
      var name = key.slice('pickerParam'.length);
      name = name.charAt(0).toLowerCase() + name.slice(1);
      name = name.replace(/[A-Z]/g, function (c) { return '_' + c.toLowerCase(); });
      var source = document.querySelector(el.dataset[key]);
      extra.push([name, source ? source.value : '']);
    });
    return extra;
  }

  function fromSelect(select) {
    var input = document.createElement('input');
    input.type = 'text';
    input.className = 'form-control ob-picker-input';
    input.autocomplete = 'off';
    input.id = select.id ? select.id + '-search' : '';
    input.placeholder = select.dataset.pickerPlaceholder || 'Type to search';
    var chosen = select.options[select.selectedIndex];
    input.value = chosen && chosen.value ? chosen.textContent : '';
    Object.keys(select.dataset).forEach(function (key) { input.dataset[key] = select.dataset[key]; });
    select.style.display = 'none';
    select.parentNode.insertBefore(input, select);
    input.obSelect = select;
    return input;
  }

  function setValue(input, item) {
    var select = input.obSelect;
    if (select) {
      var option = Array.prototype.find.call(select.options, function (o) { return o.value === String(item ? item.id : ''); });
      if (!option && item) {
        option = document.createElement('option');
        option.value = String(item.id);
        option.textContent = item.label;
        select.appendChild(option);
      }
      select.value = item ? String(item.id) : '';
      select.dispatchEvent(new Event('change', {bubbles: true}));
    }
    var target = input.dataset.pickerTarget && document.getElementById(input.dataset.pickerTarget);
    if (target) {
      target.value = item ? String(item.id) : '';
      target.dispatchEvent(new Event('change', {bubbles: true}));
    }
  }

  function attach(el) {
    if (el.obPicker) { return el.obPicker; }
    var input = el.tagName === 'SELECT' ? fromSelect(el) : el;
    el.obPicker = input.obPicker = true;
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    var list = document.createElement('ul');
    list.className = 'dropdown-menu ob-picker-list';
    list.setAttribute('role', 'listbox');
    list.style.maxHeight = '320px';
    list.style.overflowY = 'auto';
    var wrapper = input.parentNode;
    if (getComputedStyle(wrapper).position === 'static') { wrapper.style.position = 'relative'; }
    wrapper.insertBefore(list, input.nextSibling);
    var items = [];
    var active = -1;
    var timer = null;
    var asked = 0;
    var min = parseInt(input.dataset.pickerMin || '1', 10);

    function close() { list.style.display = 'none'; active = -1; }
    function highlight(index) {
      active = index;
      Array.prototype.forEach.call(list.children, function (li, i) {
        li.className = i === index ? 'active' : '';
        li.setAttribute('aria-selected', i === index ? 'true' : 'false');
      });
    }
    function choose(index) {
      var item = items[index];
      if (!item) { return; }
      input.value = item.label;
      input.obChosen = item;
      setValue(input, item);
      close();
      input.dispatchEvent(new CustomEvent('picker:chosen', {detail: item, bubbles: true}));
    }
    function show(found, more) {
      items = found;
      list.textContent = '';
      found.forEach(function (item, index) {
        var li = document.createElement('li');
        li.setAttribute('role', 'option');
        li.dataset.id = item.id;
        var a = document.createElement('a');
        a.href = '#';
        a.textContent = item.label;
        a.addEventListener('mousedown', function (event) { event.preventDefault(); choose(index); });
        li.appendChild(a);
        list.appendChild(li);
      });
      if (!found.length || more) {
        var note = document.createElement('li');
        note.className = 'dropdown-header';
        note.textContent = found.length ? 'More match: keep typing' : 'No match';
        list.appendChild(note);
      }
      list.style.display = 'block';
      highlight(found.length ? 0 : -1);
    }
    function search() {
      var text = input.value.trim();
      if (text.length < min) { close(); return; }
      var query = [['q', text], ['limit', input.dataset.pickerLimit || '20']].concat(params(input));
      var base = input.dataset.picker;
      var url = base + (base.indexOf('?') < 0 ? '?' : '&') + query.map(function (p) {
        return encodeURIComponent(p[0]) + '=' + encodeURIComponent(p[1]);
      }).join('&');
      var mine = ++asked;
      input.dataset.pickerBusy = '1';
      fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
        .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
        .then(function (answer) {
          if (mine !== asked) { return; }
          delete input.dataset.pickerBusy;
          if (answer.ok) { show(answer.body.result, answer.body.more); } else { show([], false); }
        })
        .catch(function () { if (mine === asked) { delete input.dataset.pickerBusy; close(); } });
    }
    input.addEventListener('input', function () {
      if (input.obChosen) {
        input.obChosen = null;
        setValue(input, null);
        input.dispatchEvent(new CustomEvent('picker:cleared', {bubbles: true}));
      }
      clearTimeout(timer);
      timer = setTimeout(search, DELAY_MS);
    });
    input.addEventListener('focus', function () { if (min === 0 && !input.obChosen) { search(); } });
    input.addEventListener('blur', function () { setTimeout(close, 100); });
    input.addEventListener('keydown', function (event) {
      if (list.style.display !== 'block') { return; }
      if (event.key === 'ArrowDown') { event.preventDefault(); highlight(Math.min(active + 1, items.length - 1)); }
      else if (event.key === 'ArrowUp') { event.preventDefault(); highlight(Math.max(active - 1, 0)); }
      else if (event.key === 'Enter' && active >= 0) { event.preventDefault(); choose(active); }
      else if (event.key === 'Escape') { close(); }
    });
    input.obPickerSearch = search;
    close();
    return true;
  }

  function attachAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll('[data-picker]'), attach);
  }

  window.OrderbridgePicker = {attach: attach, attachAll: attachAll};
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { attachAll(document); });
  } else {
    attachAll(document);
  }
})();
