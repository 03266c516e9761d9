// The four parameters of one recurrent layer direction, named as PyTorch names them.

import type { Param } from '../layers/param.js';

export interface CellWeights {
  wih: Param; // weight_ih_l{k}: [G*H, I]
  whh: Param; // weight_hh_l{k}: [G*H, H]
  bih: Param; // bias_ih_l{k}:   [G*H]
  bhh: Param; // bias_hh_l{k}:   [G*H]
}
