// Unit-suite setup: model downloads retry at once (the real waits, 300 ms and 1.5 s, only slow tests down).
import { fetchRetry } from '../../plugin/src/runtime/backend.ts';

fetchRetry.delaysMs = [0, 0];
