/**
 * Racing calls against their deadlines with one timer for all of them.
 *
 * A timer per call (setTimeout, then clearTimeout when the call settles) cost
 * every asynchronous call two timer-list operations and an object, though
 * nearly all of them settle long before their deadline. Here pending races sit
 * in one heap of deadlines (an ExpiryHeap, as the lease scheduler's) and a single timer is armed
 * for the earliest; a race that settles just leaves the heap. Calls arrive
 * with deadlines later than the ones already waiting, so the timer is rarely
 * re-armed; when it fires with nothing due it re-arms for the new earliest.
 */
import { ExpiryHeap, type Scheduled } from '../leases/expiry-heap.js';

/** setTimeout's largest delay. */
const maxTimerMs = 2_147_483_647;

interface Race extends Scheduled {
  /** Settles the race with the caller's `late()` answer. */
  expire(): void;
}

const pending = new ExpiryHeap<Race>();
let timer: NodeJS.Timeout | undefined;
/** The deadline the timer is armed for (Infinity when none). */
let armedAt = Number.POSITIVE_INFINITY;

function arm(): void {
  const at = pending.peekAt();
  if (at === armedAt) return;
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  armedAt = at;
  if (at === Number.POSITIVE_INFINITY) return;
  timer = setTimeout(fire, Math.min(Math.max(0, at - Date.now()), maxTimerMs));
}

function fire(): void {
  timer = undefined;
  armedAt = Number.POSITIVE_INFINITY;
  const now = Date.now();
  while (pending.peekAt() <= now) pending.pop()?.expire();
  arm();
}

/** A race is over: it leaves the heap, and with the last one the timer goes (it would hold the process open). */
function settled(race: Race): void {
  pending.remove(race);
  if (pending.size === 0) arm();
}

/**
 * Settles like `work`, or with `late()` (its value or what it throws) if the
 * deadline passes first. The work itself goes on: a call cannot be stopped
 * halfway, so only the answer is given up (an idempotency record still gets
 * the real result). For promises only: a synchronous call has finished before
 * any timer could fire, so it needs no race.
 */
export function settleBy<T>(work: Promise<T>, deadline: number, late: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const race: Race = {
      heapIndex: -1,
      expire() {
        try {
          resolve(late());
        } catch (error) {
          reject(error);
        }
      },
    };
    pending.push(race, deadline);
    if (deadline < armedAt) arm();
    work.then(
      (value) => {
        settled(race);
        resolve(value);
      },
      (error: unknown) => {
        settled(race);
        reject(error);
      },
    );
  });
}
