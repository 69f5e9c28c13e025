// The pages as a browser reads them: text, forms and the fields it would submit.

// ---------------------------------------------------------------------------------------------
// HTML forms, parsed with regexes (the pages are simple and ours)

export function decodeEntities(s) {
  return String(s)
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&(quot|apos|lt|gt|nbsp|amp);/g, (_, n) => ({ quot: '"', apos: "'", lt: '<', gt: '>', nbsp: '\u00a0', amp: '&' }[n]));
}

export function textOf(html) {
  return decodeEntities(String(html).replace(/<script[\s\S]*?<\/script>/gi, ' ').replace(/<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]*>/g, ' '))
    .replace(/\s+/g, ' ').trim();
}

export function parseAttributes(tag) {
  const attrs = {};
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const inner = tag.replace(/^<\s*[\w-]+/, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(inner))) {
    const name = m[1].toLowerCase();
    if (name in attrs) continue; // first one wins, as in HTML
    attrs[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/**
 * @returns {{action:string, method:string, attrs:object, html:string,
 *   inputs:{type:string,name:string,value:string,checked:boolean,required:boolean,id?:string,label:string}[],
 *   buttons:{name?:string,value?:string,type:string,text:string}[]}[]}
 */
export function parseForms(html, baseUrl) {
  const forms = [];
  const labelsFor = new Map();
  for (const m of html.matchAll(/<label\b([^>]*)>([\s\S]*?)<\/label>/gi)) {
    const a = parseAttributes(`<label ${m[1]}>`);
    if (a.for) labelsFor.set(a.for, textOf(m[2]));
  }
  for (const m of html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)) {
    const formHtml = m[0];
    const attrs = parseAttributes(formHtml.match(/^<form\b[^>]*>/i)[0]);
    const inputs = [];
    // Inputs wrapped in a <label>: the label's text names them.
    const wrapped = new Map();
    for (const l of formHtml.matchAll(/<label\b[^>]*>([\s\S]*?)<\/label>/gi)) {
      for (const i of l[1].matchAll(/<input\b[^>]*>/gi)) wrapped.set(i[0], textOf(l[1]));
    }
    for (const i of formHtml.matchAll(/<input\b[^>]*>/gi)) {
      const a = parseAttributes(i[0]);
      inputs.push({
        type: (a.type || 'text').toLowerCase(),
        name: a.name,
        value: a.value ?? (a.type === 'checkbox' || a.type === 'radio' ? 'on' : ''),
        checked: 'checked' in a,
        required: 'required' in a,
        disabled: 'disabled' in a,
        id: a.id,
        label: (a.id && labelsFor.get(a.id)) || wrapped.get(i[0]) || '',
        attrs: a,
      });
    }
    const buttons = [];
    for (const b of formHtml.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const a = parseAttributes(`<button ${b[1]}>`);
      buttons.push({ name: a.name, value: a.value, type: (a.type || 'submit').toLowerCase(), text: textOf(b[2]), attrs: a });
    }
    for (const s of formHtml.matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/gi)) {
      const a = parseAttributes(`<select ${s[1]}>`);
      const options = [...s[2].matchAll(/<option\b([^>]*)>([\s\S]*?)<\/option>/gi)].map((o) => {
        const oa = parseAttributes(`<option ${o[1]}>`);
        return { value: oa.value ?? textOf(o[2]), selected: 'selected' in oa, text: textOf(o[2]) };
      });
      inputs.push({ type: 'select', name: a.name, value: (options.find((o) => o.selected) || options[0])?.value ?? '', options, checked: false, required: 'required' in a, id: a.id, label: (a.id && labelsFor.get(a.id)) || '', attrs: a });
    }
    const action = attrs.action ? new URL(attrs.action, baseUrl).toString() : String(baseUrl);
    forms.push({ action, method: (attrs.method || 'get').toLowerCase(), attrs, html: formHtml, inputs, buttons });
  }
  return forms;
}

/** The fields a browser would submit: hidden/text inputs, checked boxes; not buttons. */
export function formFields(form) {
  const fields = new URLSearchParams();
  for (const i of form.inputs) {
    if (!i.name || i.disabled) continue;
    if (i.type === 'radio' || i.type === 'checkbox') { if (i.checked) fields.append(i.name, i.value); continue; }
    if (['submit', 'button', 'image', 'reset', 'file'].includes(i.type)) continue;
    fields.append(i.name, i.value);
  }
  return fields;
}

/**
 * The interaction page of idp-proxy: the form with a hidden `csrf`, its `choice` radios
 * ("{mandate_id}:{demarche}") with their labels, and the `certify` checkbox.
 */
export function parseInteractionPage(html, pageUrl) {
  const forms = parseForms(html, pageUrl);
  const form = forms.find((f) => f.method === 'post' && f.inputs.some((i) => i.name === 'csrf'))
    || forms.find((f) => f.method === 'post') || null;
  const options = (form?.inputs || [])
    .filter((i) => i.type === 'radio' && i.name === 'choice')
    .map((i) => {
      const sep = i.value.lastIndexOf(':');
      return { value: i.value, mandateId: i.value.slice(0, sep), demarche: i.value.slice(sep + 1), label: i.label, checked: i.checked };
    });
  return {
    form,
    csrf: form?.inputs.find((i) => i.name === 'csrf')?.value ?? null,
    certify: form?.inputs.find((i) => i.name === 'certify') ?? null,
    options,
    text: textOf(html),
  };
}
