// Import page: drag-and-drop (files and whole folders), batched uploads with a progress bar, then
// one request that queues the import job and shows its live progress fragment (htmx polling).
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const drop = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  const box = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-bar");
  const statusLine = document.getElementById("upload-status");
  const errorLine = document.getElementById("upload-error");
  const button = document.getElementById("upload-button");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const maxUpload = Number(form.dataset.maxUpload);
  const maxZip = Number(form.dataset.maxZip);
  const batchFiles = Number(form.dataset.batchFiles);
  const batchBytes = Number(form.dataset.batchBytes);
  let picked = []; // [{file, path}]
  // The one folder dropped or picked, whose name the browser put before every path: it is no class
  // (labeling/services/imports/folder_classes.py); "" for files, zips, or several folders at once.
  let droppedFolder = "";

  function showError(text) { errorLine.textContent = text; errorLine.hidden = !text; }
  function setStatus(text, percent) {
    box.hidden = false;
    statusLine.textContent = text;
    if (percent !== undefined) bar.style.width = percent.toFixed(1) + "%";
  }

  function readEntries(reader) {
    return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
  }
  async function walk(entry, prefix, out) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
        for (const child of batch) await walk(child, prefix + entry.name + "/", out);
      }
    }
  }

  // Operating-system litter is never an image (same rule as is_junk in labeling/services/imports/sources.py):
  // macOS __MACOSX/ folders, .DS_Store, ._* AppleDouble files and Icon\r, Windows Thumbs.db and desktop.ini.
  const JUNK = new Set(["__MACOSX", "Thumbs.db", "desktop.ini", "Icon\r"]);
  function isJunk(path) {
    return path.split("/").some((part) => part.startsWith(".") || JUNK.has(part));
  }

  // "Folders are classes" for a pick whose images all lie in sub-folders (pets/ holding cat/ and dog/): the page
  // ticks the box and says so beside it, unless the user ticked or unticked it themselves, which always stands.
  const foldersBox = document.getElementById("labels-from-folders");
  const foldersHint = document.getElementById("folders-hint");
  let boxChosen = foldersBox.checked; // ticked as the form came back: the user's choice
  let autoTicked = false;
  // Same list as IMAGE_SUFFIXES in labeling/services/imports/folder_classes.py: a README beside the folders decides nothing
  const IMAGE = /\.(jpe?g|jpe|png|webp|gif|bmp|tiff?)$/i;

  // The folders that would become (top-level) classes, or [] when some image lies outside any sub-folder.
  function classFolders(list, folder) {
    const images = list.filter((p) => IMAGE.test(p.path));
    const names = new Set();
    for (const p of images) {
      const parts = p.path.split("/").slice(folder ? 1 : 0); // the folder picked or dropped is no class
      if (parts.length < 2) return [];
      names.add(parts[0]);
    }
    return Array.from(names).sort();
  }

  function suggestFolders() {
    const names = classFolders(picked, droppedFolder);
    if (!boxChosen) {
      foldersBox.checked = names.length > 0;
      autoTicked = foldersBox.checked;
    }
    foldersHint.hidden = !names.length;
    if (!names.length) { foldersHint.textContent = ""; return; }
    const shown = names.slice(0, 6).join(", ") + (names.length > 6 ? ` and ${names.length - 6} more` : "");
    const where = droppedFolder ? `the images of ${droppedFolder} lie in its sub-folders` : "the images lie in folders";
    if (autoTicked) foldersHint.textContent = `Ticked: ${where}, which become classes: ${shown}. Untick to import them unlabeled.`;
    else if (foldersBox.checked) foldersHint.textContent = `These folders become classes: ${shown}.`;
    else foldersHint.textContent = `Not ticked, but ${where} (${shown}): tick to make them classes.`;
  }
  foldersBox.addEventListener("change", () => {
    boxChosen = true;
    autoTicked = false;
    suggestFolders();
  });

  function choose(list, folder) {
    list = list.filter((p) => !isJunk(p.path));
    picked = list;
    droppedFolder = folder || "";
    const bytes = list.reduce((n, p) => n + p.file.size, 0);
    setStatus(`${list.length} file${list.length === 1 ? "" : "s"} selected (${(bytes / 1048576).toFixed(1)} MiB)`, 0);
    suggestFolders();
  }

  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("over")));
  drop.addEventListener("drop", async (event) => {
    event.preventDefault();
    const out = [];
    const items = Array.from(event.dataTransfer.items || []).filter((item) => item.kind === "file");
    if (items.length) {
      // Read every item before awaiting anything: the DataTransfer is emptied once the handler yields.
      const dropped = items.map((item) => ({ entry: item.webkitGetAsEntry && item.webkitGetAsEntry(), file: item.getAsFile() }));
      const folders = dropped.filter(({ entry }) => entry && entry.isDirectory);
      for (const { entry, file } of dropped) {
        if (entry && entry.isDirectory) await walk(entry, "", out);
        else if (file) out.push({ file, path: file.name }); // files, and items without a file-system entry
      }
      choose(out, folders.length === 1 ? folders[0].entry.name : "");
    } else {
      for (const file of event.dataTransfer.files) out.push({ file, path: file.name });
      choose(out);
    }
  });
  // Files, or a whole folder (webkitdirectory: each file's path starts with the folder's name, as when dropped).
  const folderInput = document.getElementById("folder-input");
  [input, folderInput].forEach((picker) => picker && picker.addEventListener("change", () => {
    const files = Array.from(picker.files);
    const folder = picker === folderInput && files.length ? (files[0].webkitRelativePath || "").split("/")[0] : "";
    choose(files.map((file) => ({ file, path: file.webkitRelativePath || file.name })), folder);
    const other = picker === input ? folderInput : input;
    if (other) other.value = "";  // the last choice counts, not both
  }));

  function post(url, data, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
      xhr.onload = () => {
        if (xhr.status === 413) reject(new Error("The server refused the upload as too large (HTTP 413). Upload fewer or smaller files at a time."));
        else if (xhr.status >= 400) {
          let message = `Upload failed (HTTP ${xhr.status}).`;
          try { message = JSON.parse(xhr.responseText).error || message; } catch (_) { /* not JSON */ }
          reject(new Error(message));
        } else resolve(xhr);
      };
      xhr.onerror = () => reject(new Error("Network error while uploading; nothing was imported from this batch."));
      xhr.send(data);
    });
  }

  form.addEventListener("submit", async (event) => {
    if (!picked.length && input.files.length === 0) return; // let the browser show "required"-style behaviour
    event.preventDefault();
    showError("");
    button.disabled = true;
    const sendable = [];
    const oversized = [];
    for (const p of picked) {
      const limit = p.path.toLowerCase().endsWith(".zip") ? maxZip : maxUpload;
      (p.file.size > limit ? oversized : sendable).push(p);
    }
    const total = sendable.reduce((n, p) => n + p.file.size, 0) || 1;
    let sent = 0;
    let token = "";
    try {
      let i = 0;
      do {
        const data = new FormData();
        if (token) data.append("token", token);
        if (i === 0) oversized.forEach((p) => data.append("oversized", p.path));
        let bytes = 0;
        const start = i;
        const ends = [];  // bytes of the batch up to the end of each of its files
        while (i < sendable.length && i - start < batchFiles && (i === start || bytes + sendable[i].file.size <= batchBytes)) {
          data.append("files", sendable[i].file, sendable[i].file.name);
          data.append("names", sendable[i].path);
          bytes += sendable[i].file.size;
          ends.push(bytes);
          i += 1;
        }
        const base = sent;
        const xhr = await post(form.dataset.uploadUrl, data, (loaded) => {
          // Files whose bytes have all gone out (the request also carries form fields: never past the batch)
          const done = start + ends.filter((end) => end <= loaded).length;
          setStatus(`Uploading… ${done} of ${sendable.length} files sent`, 100 * Math.min(1, (base + loaded) / total));
        });
        token = JSON.parse(xhr.responseText).token;
        sent += bytes;
      } while (i < sendable.length);
      setStatus("Upload complete; queuing the import…", 100);
      const start = new FormData();
      start.append("token", token);
      if (foldersBox.checked) start.append("labels_from_folders", "on");
      if (droppedFolder) start.append("dropped_folder", droppedFolder);
      const xhr = await post(form.dataset.startUrl, start);
      const jobs = document.getElementById("jobs");
      const empty = document.getElementById("no-jobs");
      if (empty) empty.remove();
      jobs.insertAdjacentHTML("afterbegin", xhr.responseText);
      if (window.htmx) window.htmx.process(jobs.firstElementChild);
      setStatus(`Uploaded ${sendable.length} file${sendable.length === 1 ? "" : "s"}; the import runs in the background.`, 100);
      picked = [];
      droppedFolder = "";
      foldersHint.hidden = true;
      input.value = "";
      if (folderInput) folderInput.value = "";
    } catch (error) {
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  });
})();
