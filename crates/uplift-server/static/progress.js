// Live progress of an upgrade: the page's Server-Sent Events stream updates each
// phase's bar, its counts and ETA, and the status; when the step running ends the page
// is loaded again to show what follows. Without JavaScript the page still shows the
// state as of its loading.
(function () {
  const live = document.getElementById('live');
  if (!live || !window.EventSource) return;
  const source = new EventSource(live.dataset.events);
  // The status the page was rendered with: once the stream says another, the page is
  // out of date (a step that ended before the stream's first message included).
  const rendered = document.getElementById('status').textContent;
  source.onmessage = (m) => {
    const s = JSON.parse(m.data);
    document.getElementById('status').textContent = s.status;
    for (const p of s.phases) {
      const bar = document.getElementById('phase-' + p.key);
      if (!bar) continue;
      bar.max = Math.max(p.total, 1);
      bar.value = p.done;
      document.getElementById('phase-' + p.key + '-done').textContent = p.done + ' / ' + p.total;
      document.getElementById('phase-' + p.key + '-eta').textContent = p.eta;
    }
    const entities = document.querySelector('#entities tbody');
    if (entities) entities.replaceChildren(...s.entities.map(entityRow));
    if (s.status !== rendered) { source.close(); window.location.reload(); }
  };
  // One entity's row: its name, a bar, rows done of all, ETA (text only, no markup).
  function entityRow(e) {
    const row = document.createElement('tr');
    const name = document.createElement('th');
    name.scope = 'row';
    name.textContent = e.name;
    const bar = document.createElement('progress');
    bar.max = Math.max(e.total, 1);
    bar.value = e.done;
    bar.setAttribute('aria-label', e.name);
    const cells = [bar, e.done + ' / ' + e.total, e.eta].map((c) => {
      const td = document.createElement('td');
      if (typeof c === 'string') td.textContent = c; else td.append(c);
      return td;
    });
    row.append(name, ...cells);
    return row;
  }
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) source.close(); };
})();
