// The upload form of a contact import: a plain form cannot send a file without multipart, so
// this sends the chosen file as the body of the API's upload (with this origin's session
// cookie) and opens the mapping page of the import it answers.
"use strict";
(function () {
  const form = document.getElementById("import-upload");
  if (!form) return;
  const status = document.getElementById("import-status");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const input = form.querySelector("input[type=file]");
    const file = input && input.files && input.files[0];
    if (!file) return;
    const slug = form.dataset.slug;
    const button = form.querySelector("button");
    button.disabled = true;
    status.textContent = "Uploading " + file.name + "…";
    try {
      const url = "/v1/orgs/" + encodeURIComponent(slug) + "/imports?file_name=" + encodeURIComponent(file.name);
      const response = await fetch(url, {
        method: "POST",
        body: file,
        credentials: "same-origin",
        headers: { "Content-Type": "text/csv" },
      });
      const body = await response.json();
      if (response.status === 201) {
        window.location.assign("/orgs/" + encodeURIComponent(slug) + "/imports/" + encodeURIComponent(body.import.id));
        return;
      }
      status.textContent = body.detail || "The upload was refused.";
    } catch (e) {
      status.textContent = "The upload did not reach the server; try again.";
    }
    button.disabled = false;
  });
})();
