/**
 * Small DOM helpers for the operator page: build elements without innerHTML (every text from
 * the API goes in as a text node, so a reason or a name can never become markup), and format
 * numbers and times.
 */

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (["disabled", "hidden", "checked", "readOnly"].includes(key) && !(el instanceof SVGElement)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: `h("button", {class: "x", onclick: fn}, "text", child, ...)`. */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, same calling convention as `h`. */
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return build(el, {}, children);
}

/** A number for a person: 3 significant digits, no trailing zeros, "–" for none. */
export function num(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(3)));
}

/** An ISO time as the browser's local date and time, to the second. */
export function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

/** Show or hide an element with a text (an empty text hides it). */
export function say(el, text, cls = "") {
  el.className = ["message", cls].filter(Boolean).join(" ");
  el.replaceChildren(text ? document.createTextNode(text) : "");
  el.hidden = !text;
  return el;
}
