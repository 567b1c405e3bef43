(function () {
  var idle = Number(document.body.dataset.idleSeconds || 0);
  if (!idle) { return; }
  setTimeout(function () {
    var note = document.createElement('p');
    note.className = 'alert';
    note.setAttribute('role', 'alert');
    note.textContent = 'Without activity you will be signed out in about a minute. Open or reload a page to stay signed in.';
    document.querySelector('main').prepend(note);
  }, Math.max(idle - 60, 0) * 1000);
  setTimeout(function () { window.location.href = '/sign-in'; }, (idle + 5) * 1000);
})();

// The segment editor counts while it is edited: its form is posted, as the "Count" button
// would post it, to the count address it names, at most once per pause in typing.
(function () {
  var form = document.querySelector('form[data-count-url]');
  if (!form) { return; }
  var output = document.getElementById('segment-count');
  var json = document.getElementById('json');
  var mode = document.getElementById('mode');
  var timer = null;
  var asked = 0;
  function count() {
    var mine = ++asked;
    fetch(form.dataset.countUrl, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(new FormData(form))
    }).then(function (response) {
      return response.text();
    }).then(function (text) {
      // An answer to an older edit is not shown over a newer one.
      if (mine === asked) { output.textContent = text; }
    }).catch(function () {
      if (mine === asked) { output.textContent = 'not counted (no connection)'; }
    });
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(count, 400);
  }
  if (json && mode) {
    // Typing in the JSON means using it.
    json.addEventListener('input', function () { mode.checked = true; });
  }
  form.addEventListener('input', later);
  form.addEventListener('change', later);
})();
