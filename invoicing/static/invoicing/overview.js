/* Draws the overview charts from the page's JSON (figures in minor units) with Chart.js. */
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var source = document.getElementById("overview-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var scale = Math.pow(10, data.exponent);
    var money = new Intl.NumberFormat(undefined, { style: "currency", currency: data.currency });
    var compact = new Intl.NumberFormat(undefined, { style: "currency", currency: data.currency, notation: "compact" });
    var palette = ["#1d5fa7", "#f2a541", "#2a9d8f", "#8e5ea2", "#e76f51", "#6c757d", "#3cba9f", "#c45850"];
    function major(values) { return values.map(function (v) { return v / scale; }); }
    function axis() { return { ticks: { callback: function (v) { return compact.format(v); } }, beginAtZero: true }; }
    function tooltip() {
      return { callbacks: { label: function (c) { return (c.dataset.label ? c.dataset.label + ": " : "") + money.format(c.parsed.y !== undefined && c.chart.options.indexAxis !== "y" ? c.parsed.y : c.parsed.x); } } };
    }
    function go(links) {
      return function (event, elements) {
        if (!elements.length) return;
        var el = elements[0];
        var url = Array.isArray(links) ? links[el.index] : links[el.datasetIndex][el.index];
        if (url) window.location.href = url;
      };
    }
    // the theme's dark mode: chosen in its switch (stored by Alpine as _x_adminTheme) or "auto"
    var chosen = null;
    try { chosen = JSON.parse(localStorage.getItem("_x_adminTheme")); } catch (e) { chosen = null; }
    var dark = chosen === "dark" || (chosen !== "light" && window.matchMedia("(prefers-color-scheme: dark)").matches);
    Chart.defaults.color = dark ? "#9ca3af" : "#6b7280";
    Chart.defaults.borderColor = dark ? "rgba(255, 255, 255, .08)" : "rgba(0, 0, 0, .07)";
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.animation = false;

    new Chart(document.getElementById("chart-mrr"), {
      type: "line",
      data: { labels: data.labels, datasets: [{ label: "MRR", data: major(data.mrr), borderColor: palette[0],
        backgroundColor: "rgba(29, 95, 167, .12)", fill: true, tension: .25, pointRadius: 3 }] },
      options: { plugins: { legend: { display: false }, tooltip: tooltip() }, scales: { y: axis() }, onClick: go(data.month_links) }
    });

    var streamNames = { subscription: "Subscription", usage: "Usage", fixed: "Fixed charges", commitment: "Commitment", one_off: "One-off" };
    var streamKeys = Object.keys(data.streams);
    new Chart(document.getElementById("chart-streams"), {
      type: "bar",
      data: { labels: data.labels, datasets: streamKeys.map(function (key, i) {
        return { label: streamNames[key] || key, data: major(data.streams[key]), backgroundColor: palette[i % palette.length] };
      }) },
      options: { plugins: { tooltip: tooltip() }, scales: { x: { stacked: true }, y: Object.assign(axis(), { stacked: true }) },
        onClick: go(data.month_links) }
    });

    var statusColors = { succeeded: "#2a9d8f", pending: "#f2a541", failed: "#c0392b" };
    var statuses = Object.keys(data.collection);
    new Chart(document.getElementById("chart-collection"), {
      type: "bar",
      data: { labels: data.labels, datasets: statuses.map(function (status) {
        return { label: status.charAt(0).toUpperCase() + status.slice(1), data: major(data.collection[status]), backgroundColor: statusColors[status] };
      }) },
      options: { plugins: { tooltip: tooltip() }, scales: { x: { stacked: true }, y: Object.assign(axis(), { stacked: true }) },
        onClick: go(statuses.map(function (s) { return data.collection_links[s]; })) }
    });

    var metrics = Object.keys(data.usage);
    new Chart(document.getElementById("chart-usage"), {
      type: "bar",
      data: { labels: data.labels, datasets: metrics.map(function (code, i) {
        return { label: code, data: major(data.usage[code]), backgroundColor: palette[(i + 2) % palette.length] };
      }) },
      options: { plugins: { tooltip: tooltip() }, scales: { x: { stacked: true }, y: Object.assign(axis(), { stacked: true }) } }
    });

    new Chart(document.getElementById("chart-top"), {
      type: "bar",
      data: { labels: data.top.map(function (t) { return t.name; }),
        datasets: [{ label: "Invoiced", data: data.top.map(function (t) { return t.amount / scale; }), backgroundColor: palette[0] }] },
      options: { indexAxis: "y", plugins: { legend: { display: false }, tooltip: tooltip() }, scales: { x: axis() },
        onClick: go(data.top.map(function (t) { return t.url; })) }
    });
    document.getElementById("overview").setAttribute("data-charts", "drawn");
  });
})();
