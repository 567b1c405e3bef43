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
