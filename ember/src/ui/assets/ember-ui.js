// The Ember web UI's only script: optional auto-refresh while the application runs, and
// client-side sorting of the small summary tables (the task table sorts on the server).
"use strict";
(function () {
  function setupRefresh() {
    var box = document.getElementById("auto-refresh");
    if (!box) { return; }
    var key = "ember-ui-auto-refresh";
    var on = false;
    try { on = window.localStorage.getItem(key) === "on"; } catch (e) { on = false; }
    box.checked = on;
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(key, box.checked ? "on" : "off"); } catch (e) { /* none */ }
      if (box.checked) { window.location.reload(); }
    });
    if (on) { window.setTimeout(function () { window.location.reload(); }, 2000); }
  }
  function cellValue(row, i) {
    var cell = row.cells[i];
    if (!cell) { return ""; }
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim() : v;
  }
  function setupSorting() {
    var tables = document.querySelectorAll("table.sortable:not(.server-sorted)");
    Array.prototype.forEach.call(tables, function (table) {
      var heads = table.tHead ? table.tHead.rows[0].cells : [];
      Array.prototype.forEach.call(heads, function (th, i) {
        var asc = true;
        th.addEventListener("click", function () {
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var x = cellValue(a, i), y = cellValue(b, i);
            var nx = parseFloat(x), ny = parseFloat(y);
            var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
            return asc ? c : -c;
          });
          asc = !asc;
          rows.forEach(function (r) { body.appendChild(r); });
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    setupRefresh();
    setupSorting();
  });
}());
