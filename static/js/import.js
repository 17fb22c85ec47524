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

  // Sizes in the binary units the limits are set in, as the server says them (binary_size in
  // labeling/services/imports/validation.py): "2.3 MiB", "40.0 KiB".
  function binarySize(n) {
    if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
    return n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
  }
  const limitOf = (p) => (p.path.toLowerCase().endsWith(".zip") ? maxZip : maxUpload);
  // Files over the size limit are not sent; the job lists them as refused.
  function split(list) {
    const sendable = [];
    const oversized = [];
    for (const p of list) (p.file.size > limitOf(p) ? oversized : sendable).push(p);
    return { sendable, oversized };
  }
  const skippedNote = document.getElementById("upload-skipped");

  function choose(list, folder) {
    list = list.filter((p) => !isJunk(p.path));
    picked = list;
    resume = null;
    droppedFolder = folder || "";
    const bytes = list.reduce((n, p) => n + p.file.size, 0);
    setStatus(`${list.length} file${list.length === 1 ? "" : "s"} selected (${(bytes / 1048576).toFixed(1)} MiB)`, 0);
    const { oversized } = split(list);
    skippedNote.replaceChildren(...oversized.slice(0, 20).map((p) => {
      const li = document.createElement("li");
      li.textContent = `${p.path} is ${binarySize(p.file.size)}, over the ${binarySize(limitOf(p))} limit: it will not be sent.`;
      return li;
    }));
    if (oversized.length > 20) {
      const li = document.createElement("li");
      li.textContent = `and ${oversized.length - 20} more over the limit.`;
      skippedNote.append(li);
    }
    skippedNote.hidden = !oversized.length;
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

  // A request that did not get through: the network dropped, or a proxy in front of the server answered 502/503/504.
  // Such a batch is sent again; a refusal by the server itself (400, 413) is not.
  class Lost extends Error {}
  const STALL_MS = 30000;
  function post(url, data, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      // A line that goes quiet without an error (Wi-Fi out of reach) would hold the request for minutes: when no
      // byte of the batch has gone out for STALL_MS, it counts as lost, and is sent again.
      let last = Date.now();
      let sending = true;
      const watch = setInterval(() => {
        if (sending && Date.now() - last > STALL_MS) { clearInterval(watch); xhr.abort(); reject(new Lost(`nothing went out for ${STALL_MS / 1000} s`)); }
      }, 1000);
      xhr.addEventListener("loadend", () => clearInterval(watch));
      xhr.upload.addEventListener("load", () => { sending = false; });
      xhr.upload.addEventListener("progress", (e) => { last = Date.now(); if (onProgress) onProgress(e.loaded); });
      xhr.onload = () => {
        if ([502, 503, 504].includes(xhr.status)) reject(new Lost(`the server did not answer (HTTP ${xhr.status})`));
        else if (xhr.status === 413) reject(new Error("The server refused the upload as too large (HTTP 413). Upload fewer or smaller files at a time."));
        else if (xhr.status >= 400) {
          let message = `Upload failed (HTTP ${xhr.status}).`;
          try { message = JSON.parse(xhr.responseText).error || message; } catch (_) { /* not JSON */ }
          reject(new Error(message));
        } else resolve(xhr);
      };
      xhr.onerror = () => reject(new Lost("the network connection was lost"));
      xhr.send(data);
    });
  }

  // Waits after a lost request: 1, 2, 4, 8, 16, 30, 30, 30 s (about two minutes in all), cut short when the
  // browser says it is back online.
  const RETRY_DELAYS = [1, 2, 4, 8, 16, 30, 30, 30];
  function pause(seconds, say) {
    return new Promise((resolve) => {
      let left = seconds;
      let timer = null;
      const done = () => { clearInterval(timer); window.removeEventListener("online", done); resolve(); };
      say(left);
      timer = setInterval(() => { left -= 1; if (left <= 0) done(); else say(left); }, 1000);
      window.addEventListener("online", done);
    });
  }
  async function persist(send, what, sentText) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await send();
      } catch (error) {
        if (!(error instanceof Lost)) throw error;
        if (attempt >= RETRY_DELAYS.length) throw new Lost(`No answer from the server for two minutes (${error.message}).`);
        await pause(RETRY_DELAYS[attempt], (left) => setStatus(`Connection lost: retrying ${what} in ${left} s… (${sentText})`));
      }
    }
  }

  // Batches of at most batchFiles files and batchBytes bytes (a file larger than that goes alone): [start, end).
  function batchesOf(list) {
    const out = [];
    let i = 0;
    while (i < list.length) {
      const start = i;
      let bytes = 0;
      while (i < list.length && i - start < batchFiles && (i === start || bytes + list[i].file.size <= batchBytes)) {
        bytes += list[i].file.size;
        i += 1;
      }
      out.push([start, i]);
    }
    return out;
  }

  // An upload that stopped after some batches reached the server: pressing the button again with the same files
  // chosen goes on from the first batch that did not arrive.
  let resume = null;
  let uploading = false;
  // Leaving the page mid-upload loses it (the files are in this page); once the job exists it runs on the server.
  window.addEventListener("beforeunload", (event) => {
    if (!uploading) return;
    event.preventDefault();
    event.returnValue = "";
  });

  form.addEventListener("submit", async (event) => {
    if (!picked.length && input.files.length === 0) return; // let the browser show "required"-style behaviour
    event.preventDefault();
    showError("");
    button.disabled = true;
    uploading = true;
    const { sendable, oversized } = split(picked);
    const batches = batchesOf(sendable);
    if (!resume || resume.list !== picked) {
      // A key for this upload's batches, so that a batch sent twice is staged once
      resume = { list: picked, token: "", next: 0, key: Date.now().toString(36) + Math.random().toString(36).slice(2, 8) };
    }
    const state = resume;
    const total = sendable.reduce((n, p) => n + p.file.size, 0) || 1;
    const bytesBefore = (end) => sendable.slice(0, end).reduce((n, p) => n + p.file.size, 0);
    try {
      for (; state.next < batches.length || (state.next === 0 && !batches.length); state.next += 1) {
        const [start, end] = batches[state.next] || [0, 0];
        const build = () => {
          const data = new FormData();
          if (state.token) data.append("token", state.token);
          data.append("batch", `${state.key}-${state.next}`);
          if (state.next === 0) {
            oversized.forEach((p) => { data.append("oversized", p.path); data.append("oversized_size", String(p.file.size)); });
          }
          for (const p of sendable.slice(start, end)) {
            data.append("files", p.file, p.file.name);
            data.append("names", p.path);
          }
          return data;
        };
        const base = bytesBefore(start);
        const ends = [];  // bytes of the batch up to the end of each of its files
        sendable.slice(start, end).reduce((n, p) => { ends.push(n + p.file.size); return n + p.file.size; }, 0);
        setStatus(`Uploading… ${start} of ${sendable.length} files sent`, 100 * base / total);
        const xhr = await persist(() => post(form.dataset.uploadUrl, build(), (loaded) => {
          // Files whose bytes have all gone out (the request also carries form fields: never past the batch)
          const done = start + ends.filter((e) => e <= loaded).length;
          setStatus(`Uploading… ${done} of ${sendable.length} files sent`, 100 * Math.min(1, (base + loaded) / total));
        }), `batch ${state.next + 1} of ${batches.length}`, `${start} of ${sendable.length} files sent`);
        state.token = JSON.parse(xhr.responseText).token;
        if (!batches.length) { state.next = 1; break; }
      }
      setStatus("Upload complete; queuing the import…", 100);
      let tries = 0;
      const xhr = await persist(() => {
        const begin = new FormData();
        begin.append("token", state.token);
        if (tries++) begin.append("retry", "1"); // the first try may have made the job before its answer was lost
        if (foldersBox.checked) begin.append("labels_from_folders", "on");
        if (droppedFolder) begin.append("dropped_folder", droppedFolder);
        return post(form.dataset.startUrl, begin);
      }, "the start of the import", `${sendable.length} of ${sendable.length} files sent`);
      uploading = false;
      resume = null;
      const jobs = document.getElementById("jobs");
      const empty = document.getElementById("no-jobs");
      if (empty) empty.remove();
      jobs.insertAdjacentHTML("afterbegin", xhr.responseText);
      if (window.htmx) window.htmx.process(jobs.firstElementChild);
      setStatus(`Uploaded ${sendable.length} file${sendable.length === 1 ? "" : "s"}; the import runs in the background.`, 100);
      picked = [];
      droppedFolder = "";
      foldersHint.hidden = true;
      skippedNote.hidden = true;
      input.value = "";
      if (folderInput) folderInput.value = "";
    } catch (error) {
      uploading = false;
      const kept = batches.length ? (batches[state.next - 1]?.[1] || 0) : 0;
      setStatus(`Upload stopped: ${kept} of ${sendable.length} files sent.`);
      if (error instanceof Lost) {
        showError(`${error.message} Nothing was imported. Press “Upload and import” again to go on: ` +
          (kept ? `the ${kept} files already sent are kept and not sent again.` : "every file is sent again."));
      } else {
        resume = null; // a refusal: the next press starts over
        showError(`${error.message} Nothing was imported.`);
      }
    } finally {
      button.disabled = false;
    }
  });
})();
