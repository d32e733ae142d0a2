// samstream app: import of masks into the open video, and a project's export as a training set.
// Loaded after app.js, whose globals it uses: S, $, el, api, write, busy, afterWrite, selectObject, setStatus,
// showError, vurl. Nothing of app.js is changed: the controls are added to its DOM here.
"use strict";

// a file download from `url`; a failed answer's {"error"} goes to #status
async function downloadFrom(url, fallbackName, label) {
  await busy(label, async () => {
    let res;
    try {
      res = await fetch(url);
    } catch (e) { showError("cannot reach the server: " + e.message); return; }
    if (!res.ok) {
      let message = `${label.toLowerCase()}: HTTP ${res.status}`;
      try { message = (await res.json()).error || message; } catch { /* not JSON */ }
      showError(message);
      return;
    }
    const m = /filename="?([^";]+)"?/.exec(res.headers.get("Content-Disposition") || "");
    const name = m ? m[1] : fallbackName;
    const href = URL.createObjectURL(await res.blob());
    const a = el("a", { href, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
    setStatus(`Exported ${name}`);
  });
}

// ---------------------------------------------------------------------------------------------- import
function importMasks(file) {
  if (!S.video || !file) return;
  write("Importing", async () => {
    const form = new FormData();
    form.append("file", file, file.name);
    if (Number.isInteger(S.version)) form.append("version", String(S.version));
    const res = await api("POST", vurl("/import"), form);
    await afterWrite();
    const ids = res.objects.map((o) => o.obj_id);
    if (ids.length) selectObject(ids[0]);
    const frames = res.objects.reduce((n, o) => n + o.frames, 0);
    setStatus(`Imported ${ids.length} object${ids.length === 1 ? "" : "s"} (${frames} masks) from ${file.name}`);
  });
}

function addImportControl() {
  const exportButton = $("#export");
  if (!exportButton || $("#import")) return;
  const input = el("input", { id: "import", type: "file", accept: ".zip,.json,application/zip,application/json",
    hidden: true });
  const label = el("label", { className: "button", id: "import-label",
    title: "Import masks: a zip of DAVIS PNGs (named by frame), a SA-V or a COCO JSON" }, "\u21e7 Import", input);
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    input.value = "";   // choosing the same file again imports it again
    importMasks(file);
  });
  exportButton.after(label);
}

// ---------------------------------------------------------------------------------------------- training set
// app.js rebuilds the project list on every load: each project row gets its button as it appears
function addTrainingButtons() {
  for (const head of document.querySelectorAll("#projects li.project")) {
    if (head.querySelector(".export-training")) continue;
    const pid = head.dataset.projectId;
    const button = el("button", { className: "export-training", type: "button",
      title: "Download the masked frames and their masks in the layout `samstream train --data` reads",
      textContent: "\u21e9 Export training set" });
    button.addEventListener("click", (ev) => {
      ev.preventDefault();
      ev.stopPropagation();
      downloadFrom(`/api/projects/${pid}/export?format=training`, `project-${pid}_training.zip`,
        "Exporting the training set");
    });
    head.append(button);
  }
}

addImportControl();
const projectList = $("#projects");
if (projectList) {
  new MutationObserver(addTrainingButtons).observe(projectList, { childList: true });
  addTrainingButtons();
}
