// Upload page: drop or pick files and folders, send them to POST /api/instances in
// batches with progress, and list one result per object. Text goes in with textContent
// only, so a file name or a server message can never become markup.

const BATCH_FILES = 16;
const BATCH_BYTES = 64 * 1024 * 1024;

const dropzone = document.getElementById("dropzone");
const progress = document.getElementById("progress");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const csrf = document.getElementById("csrf").value;

function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function filesFromEntry(entry, prefix = "") {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ file, name: prefix + file.name }];
  }
  const reader = entry.createReader();
  const found = [];
  for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
    for (const child of batch) found.push(...(await filesFromEntry(child, `${prefix}${entry.name}/`)));
  }
  return found;
}

async function filesFromDrop(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ file, name: file.name }));
  const nested = await Promise.all(entries.map((entry) => filesFromEntry(entry)));
  return nested.flat();
}

function batches(files) {
  const out = [];
  let current = [];
  let bytes = 0;
  for (const item of files) {
    if (current.length && (current.length >= BATCH_FILES || bytes + item.file.size > BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.file.size;
  }
  if (current.length) out.push(current);
  return out;
}

function send(batch, onProgress) {
  return new Promise((resolve) => {
    const form = new FormData();
    for (const { file, name } of batch) form.append("files", file, name);
    const request = new XMLHttpRequest();
    request.open("POST", "/api/instances");
    request.setRequestHeader("X-CSRFToken", csrf);
    request.responseType = "json";
    request.upload.onprogress = (event) => onProgress(event.loaded);
    request.onload = () => {
      const body = request.response;
      if (body && Array.isArray(body.results)) resolve(body.results);
      else {
        const reason = (body && body.message) || `server answered ${request.status}`;
        resolve(batch.map(({ name }) => ({ source: name, status: "rejected", reason })));
      }
    };
    request.onerror = () =>
      resolve(batch.map(({ name }) => ({ source: name, status: "rejected", reason: "network error" })));
    request.send(form);
  });
}

function addRow(result) {
  const row = results.tBodies[0].insertRow();
  row.className = result.status;
  for (const text of [result.source, result.status, result.reason || ""]) {
    row.insertCell().textContent = text;
  }
}

async function upload(files) {
  if (!files.length) return;
  const total = files.reduce((sum, item) => sum + item.file.size, 0) || 1;
  let done = 0;
  const counts = { stored: 0, duplicate: 0, replaced: 0, rejected: 0 };
  progress.hidden = false;
  results.hidden = false;
  progress.max = total;
  for (const batch of batches(files)) {
    const size = batch.reduce((sum, item) => sum + item.file.size, 0);
    statusLine.textContent = `Uploading ${files.length} file(s)…`;
    const batchResults = await send(batch, (loaded) => (progress.value = done + loaded));
    done += size;
    progress.value = done;
    for (const result of batchResults) {
      counts[result.status] = (counts[result.status] || 0) + 1;
      addRow(result);
    }
  }
  statusLine.textContent =
    `Done: ${counts.stored} stored, ${counts.duplicate} already stored, ` +
    `${counts.replaced} replaced, ${counts.rejected} rejected.`;
}

for (const id of ["file-input", "folder-input"]) {
  document.getElementById(id).addEventListener("change", (event) => {
    const picked = [...event.target.files].map((file) => ({
      file,
      name: file.webkitRelativePath || file.name,
    }));
    upload(picked);
    event.target.value = "";
  });
}

dropzone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropzone.classList.add("over");
});
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", async (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
  upload(await filesFromDrop(event.dataTransfer));
});

// Ready: listeners are attached (tests wait for this before choosing files).
dropzone.dataset.ready = "true";
