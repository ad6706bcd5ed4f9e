// The handoff dashboard: uPlot charts (vendored, served from /console/static) drawn from the
// figures document, each with its numbers in a table for screen readers and for checking.
"use strict";
(() => {
  const { el, getJSON } = Console;

  function dayToSeconds(day) {
    return Date.parse(`${day}T00:00:00Z`) / 1000;
  }

  function format(value, unit) {
    if (value === null || value === undefined) return "—";
    if (unit === "%") return `${(value * 100).toFixed(1)} %`;
    if (unit === "ms") return `${Math.round(value)} ms`;
    if (unit === "s") return `${value.toFixed(2)} s`;
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(2);
    return String(value);
  }

  const PALETTE = ["#0b57d0", "#8a3ffc", "#1a7f37", "#b45309", "#d12771"];

  function chartBox(chart) {
    const table = el("table", { class: "figures" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: chart.x_label }),
        ...chart.series.map((s) => el("th", { scope: "col", text: s.label })))),
      el("tbody", {}, ...chart.x.map((x, i) => el("tr", {},
        el("th", { scope: "row", text: String(x) }),
        ...chart.series.map((s) => el("td", { text: format(s.values[i], chart.unit) }))))));
    const plot = el("div", { class: "plot", role: "img", "aria-label": `${chart.title}: chart; the numbers follow in a table` });
    const box = el("figure", { class: "chart", "data-chart": chart.id },
      el("h2", { text: chart.title }),
      el("p", { class: "note", text: chart.description }),
      plot,
      el("details", {}, el("summary", { text: "Numbers" }), table));
    return { box, plot };
  }

  function draw(chart, plot) {
    const width = Math.max(300, Math.floor(plot.getBoundingClientRect().width));
    const bars = chart.kind === "bars";
    const xs = bars ? chart.x.map((_, i) => i) : chart.x.map(dayToSeconds);
    const scale = chart.unit === "%" ? (v) => (v === null ? null : v * 100) : (v) => v;
    const data = [xs, ...chart.series.map((s) => s.values.map(scale))];
    const opts = {
      width,
      height: 240,
      legend: { show: true, live: false },
      scales: {
        x: { time: false, range: bars ? [-0.5, chart.x.length - 0.5] : [xs[0] - 43200, xs[xs.length - 1] + 43200] },
        y: { range: (u, min, max) => [0, Math.max(max * 1.1, chart.unit === "%" ? 100 : 1)] },
      },
      axes: [
        {
          splits: () => xs,
          values: (u, ticks) => ticks.map((t) => (bars ? chart.x[t] ?? "" : new Date(t * 1000).toISOString().slice(0, 10))),
        },
        { label: { "%": "%", s: "seconds" }[chart.unit] || chart.unit || "", size: 60 },
      ],
      series: [
        { label: chart.x_label },
        ...chart.series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          fill: bars ? PALETTE[i % PALETTE.length] + "cc" : undefined,
          width: 2,
          points: { show: true, size: 6 },
          paths: bars ? uPlot.paths.bars({ size: [0.6, 80] }) : undefined,
        })),
      ],
    };
    return new uPlot(opts, data, plot);
  }

  function renderOverall(rows) {
    document.querySelector("#overall tbody").replaceChildren(...rows.map((row) =>
      el("tr", { "data-figure": row.id },
        el("th", { scope: "row", text: row.label }),
        el("td", { text: format(row.value, row.unit) }))));
  }

  document.addEventListener("DOMContentLoaded", async () => {
    await Console.initHeader();
    const error = document.getElementById("dashboard-error");
    let figures;
    try {
      figures = await getJSON("/console/api/metrics");
    } catch (e) {
      Console.showError(error, e);
      return;
    }
    document.getElementById("sequence").textContent = String(figures.sequence);
    renderOverall(figures.overall_rows);
    const charts = document.getElementById("charts");
    const boxes = figures.charts.map((chart) => ({ chart, ...chartBox(chart) }));
    charts.append(...boxes.map((b) => b.box));
    // Drawn after every box is in the grid, so each plot takes its final width.
    const drawn = boxes.map(({ chart, plot }) => draw(chart, plot));
    document.body.dataset.chartsReady = String(drawn.length);
  });
})();
