/**
 * All-down transitions per name, kept out of the pure policies: the handler passes every
 * selection here; a name entering the all-down state increments `sitedns_all_down_events_total`
 * and calls `onChange` (the server logs it), and leaving it calls `onChange` again. Never per
 * query: the previous state lives in the name's PolicyMemory entry.
 */
import { allDownEventsTotal } from '../metrics/definitions.js';
import type { DynamicName } from '../model/zone-model.js';
import type { NameMemory, PolicyMemory } from './memory.js';
import type { Selection } from '../model/selection.js';

export type AllDownListener = (name: DynamicName, allDown: boolean, selection: Selection) => void;

export class AllDownWatch {
  constructor(
    readonly memory: PolicyMemory,
    private readonly onChange?: AllDownListener,
  ) {}

  observe(name: DynamicName, selection: Selection, memory: NameMemory = this.memory.of(name)): void {
    const down = selection.allDown === true;
    if (memory.allDown === down) return;
    memory.allDown = down;
    if (down) allDownEventsTotal.inc({ name: name.name });
    this.onChange?.(name, down, selection);
  }
}
