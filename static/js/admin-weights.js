// Admin "Add backbone weights" (training/admin.py, BackboneWeightsAddForm's media): saving hashes the file and loads
// it into timm in a child process, which takes tens of seconds for a large file while the page shows nothing. Once
// the form is sent its save buttons are disabled and a note says the file is being checked; a second click or Enter
// sends nothing (a second request would find its own first one's name taken). Coming back to the page through the
// browser's history gives the buttons back.
(function () {
  "use strict";

  const FORM = "form#backboneweights_form";
  const BUTTONS = 'input[type="submit"], button[type="submit"]';
  const NOTE_ID = "weights-checking";

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches(FORM)) return;
    if (form.dataset.sending === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "1";
    // After this event: a button disabled now would leave the clicked button's name (_save, _continue) out of the
    // request.
    setTimeout(() => {
      for (const button of form.querySelectorAll(BUTTONS)) button.disabled = true;
    }, 0);
    if (!document.getElementById(NOTE_ID)) {
      const note = document.createElement("p");
      note.id = NOTE_ID;
      note.className = "help";
      note.setAttribute("role", "status");
      note.textContent = "Checking the file: it is hashed and test-loaded before anything is stored. This can take " +
        "tens of seconds for a large file; keep the page open.";
      const row = form.querySelector(".submit-row");
      if (row) row.before(note);
      else form.append(note);
    }
  });

  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    const form = document.querySelector(FORM);
    if (!form) return;
    delete form.dataset.sending;
    for (const button of form.querySelectorAll(BUTTONS)) button.disabled = false;
    document.getElementById(NOTE_ID)?.remove();
  });
})();
