/**
 * The calibration screen of an EZO probe: a dialog with the circuit's guided
 * sequence (pH mid -> low -> high; EC dry -> one point, or low and high; DO in air,
 * then zero; ORP and RTD one point), each step a button with the standard's value
 * prefilled. Each answer (the circuit's points and, on pH, its slope) is shown; a
 * refusal (`*ER`: out of sequence, a bad value) is shown as an error.
 *
 * Talks to `GET /api/probes` and `POST /api/probes/{measurement}/calibrate`.
 *
 * @module calibration-view
 */

import { element } from "./dom.js";

/** The steps of each circuit's sequence: point, standard value (null: none to give). */
export const SEQUENCES = {
  pH: [["mid", 7.0], ["low", 4.0], ["high", 10.0]],
  EC: [["dry", null], ["single", 1413], ["low", 12880], ["high", 80000]],
  DO: [["atm", null], ["zero", null]],
  ORP: [["single", 225]],
  RTD: [["single", 100]],
};

/**
 * Build the dialog inside `parent`; returns the function a tile calls to open it.
 * @param {HTMLElement} parent
 * @param {{text: object, headers: Record<string, string>}} options
 * @returns {(measurement: string, circuit: string, name: string) => void}
 */
export function mountCalibration(parent, { text, headers }) {
  const dialog = element("dialog", "calibration");
  dialog.id = "calibration";
  dialog.setAttribute("aria-labelledby", "calibration-title");
  parent.append(dialog);
  return (measurement, circuit, name) => {
    new CalibrationView(dialog, text.calibration, headers).open(measurement, circuit, name);
  };
}

class CalibrationView {
  constructor(dialog, text, headers) {
    this.dialog = dialog;
    this.text = text;
    this.headers = headers;
  }

  open(measurement, circuit, name) {
    this.measurement = measurement;
    const title = element("h2", "calibration-title", this.text.title(name));
    title.id = "calibration-title";
    this.state = element("p", "calibration-state", this.text.loading);
    this.answer = element("p", "calibration-answer");
    this.answer.setAttribute("role", "status");
    this.error = element("p", "calibration-error");
    this.error.setAttribute("role", "alert");
    const steps = element("ol", "calibration-steps");
    for (const [point, value] of SEQUENCES[circuit] ?? []) steps.append(this.step(point, value));
    const close = element("button", "calibration-close", this.text.close);
    close.type = "button";
    close.addEventListener("click", () => this.dialog.close());
    this.dialog.replaceChildren(title, this.state, steps, this.answer, this.error, close);
    this.dialog.showModal();
    this.refresh();
  }

  step(point, value) {
    const item = element("li", "calibration-step");
    item.dataset.point = point;
    item.append(element("span", "calibration-label", this.text.points[point] ?? point));
    let input = null;
    if (value !== null) {
      input = element("input", "calibration-value");
      input.type = "number";
      input.step = "any";
      input.value = String(value);
      input.setAttribute("aria-label", this.text.valueOf(this.text.points[point] ?? point));
      item.append(input);
    }
    const button = element("button", "calibration-run", this.text.run);
    button.type = "button";
    button.addEventListener("click", () => this.run(point, input, button));
    item.append(button);
    return item;
  }

  async run(point, input, button) {
    button.disabled = true;
    this.error.textContent = "";
    const body = { point };
    if (input) body.value = Number(input.value);
    try {
      const response = await fetch(new URL(`api/probes/${this.measurement}/calibrate`, document.baseURI), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", ...this.headers },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (!response.ok) {
        this.error.textContent = this.text.refused(answer.detail ?? `HTTP ${response.status}`);
        return;
      }
      this.answer.textContent = this.text.done(answer.command, describe(this.text, answer.calibration));
      this.state.textContent = describe(this.text, answer.calibration);
    } catch (error) {
      this.error.textContent = this.text.refused(String(error));
    } finally {
      button.disabled = false;
    }
  }

  async refresh() {
    try {
      const response = await fetch(new URL("api/probes", document.baseURI), { headers: this.headers, cache: "no-store" });
      const probe = (await response.json()).find((p) => p.measurement === this.measurement);
      this.state.textContent = probe?.calibration ? describe(this.text, probe.calibration) : this.text.unknown;
    } catch {
      this.state.textContent = this.text.unknown;
    }
  }
}

/** "3 puntos · pendiente ácida 93,0 %, básica 96,0 %, desplazamiento 14,00 mV". */
function describe(text, calibration) {
  if (!calibration) return text.unknown;
  const parts = [text.pointCount(calibration.points)];
  const slope = calibration.slope;
  if (slope) parts.push(text.slope(slope.acid.toFixed(1), slope.base.toFixed(1), slope.offset_mv.toFixed(2)));
  return parts.join(" · ");
}
