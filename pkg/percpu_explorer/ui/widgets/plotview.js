// PlotView's front end: one plotly graph redrawn with Plotly.react whenever the kernel
// sends a new figure. plotly.js is loaded once per page: the app's template loads it
// (the <script> named by script_id); a page without it (JupyterLab) asks the kernel once.

function fromKernel(model) {
  return new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (!msg || msg.plotly_js === undefined) return;
      model.off("msg:custom", onMessage);
      const script = document.createElement("script");
      script.textContent = msg.plotly_js;
      document.head.appendChild(script);
      window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js did not load"));
    };
    model.on("msg:custom", onMessage);
    model.send({ need: "plotly.js", version: model.get("plotly_version") });
  });
}

function loadPlotly(model) {
  const wanted = model.get("plotly_version");
  if (window.Plotly && window.Plotly.version === wanted) return Promise.resolve(window.Plotly);
  if (!window.__percpuPlotly) {
    window.__percpuPlotly = new Promise((resolve) => {
      const tag = document.getElementById(model.get("script_id"));
      const fallback = () => resolve(fromKernel(model));
      const settled = () => (window.Plotly && window.Plotly.version === wanted
        ? resolve(window.Plotly) : fallback());
      if (tag && !tag.dataset.state) {
        tag.addEventListener("load", settled);
        tag.addEventListener("error", fallback);
      } else {
        settled();
      }
    });
  }
  return window.__percpuPlotly;
}

function render({ model, el }) {
  const graph = document.createElement("div");
  graph.className = "percpu-plotview";
  el.appendChild(graph);
  let alive = true;
  let Plotly = null;
  const draw = () => {
    if (!alive || !Plotly) return;
    const spec = model.get("spec");
    if (!spec) return;
    const fig = JSON.parse(spec);
    Plotly.react(graph, fig.data || [], fig.layout || {}, model.get("config")).then(() => {
      // The page's HTML drew the first figure before the widgets were live: this one
      // takes its place.
      const first = model.get("placeholder");
      if (first) document.querySelectorAll(`[data-percpu-first="${first}"]`).forEach((e) => e.remove());
      // The page's static figures further down wait for the explorers' first drawing.
      if (!window.__percpuViewDrawn) {
        window.__percpuViewDrawn = true;
        window.dispatchEvent(new Event("percpu-view-drawn"));
      }
    });
  };
  loadPlotly(model).then((P) => { Plotly = P; draw(); }).catch((err) => {
    graph.textContent = `The figure cannot be drawn: ${err.message}`;
  });
  model.on("change:spec", draw);
  // A graph drawn before its output is laid out takes plotly's default width (700px):
  // follow the width the page gives it.
  let width = 0;
  const resized = new ResizeObserver(() => {
    const now = graph.clientWidth;
    if (Plotly && graph._fullLayout && now && now !== width) {
      width = now;
      Plotly.Plots.resize(graph);
    }
  });
  resized.observe(graph);
  return () => {
    alive = false;
    resized.disconnect();
    model.off("change:spec", draw);
    if (Plotly) Plotly.purge(graph);
  };
}

export default { render };
