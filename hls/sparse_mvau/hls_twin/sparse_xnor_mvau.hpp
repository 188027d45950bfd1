// Sparse XNOR-popcount MVAU: HLS C++ twin of the generated RTL (finn-hlslib style).
//
// Bit-true to hls/sparse_mvau/reference.py (the specification):
//
//   acc_j = 2**K * popc(a & b_j) + R_j * popc(a)
//   out_j = (acc_j >= T_j) ^ inv_j                              (SparseThresholds)
//   out_j = 2*acc_j - (2**K * c_j + R_j * MW)                   (SparseNoActivation)
//
// Stream packing is FINN's (and the RTL's): one input vector of MW bits is
// SF = MW/SIMD beats of SIMD bits, element sf*SIMD+i at bit i of beat sf; one
// output vector is NF = MH/PE beats, neuron nf*PE+p at bits [p*OW +: OW].
//
// Weights are stored like the RTL's "memory" mode: only the PE x SIMD blocks
// with at least one set mask bit, in schedule order (neuron fold major, SIMD
// fold ascending), each with the SIMD fold it multiplies and a flag marking the
// last block of its neuron fold. A neuron fold without any set bit keeps one
// all-zero block so it still produces its output beat. Cycles per vector are
// therefore max(SF, NSTEPS), NSTEPS = number of stored blocks, instead of
// NF*SF for a dense MVAU.
//
// Parameter headers are generated from a SparseMVAUConfig by
// hls/sparse_mvau/hls_csim.py (write_sources), which also C-simulates this
// file against the Python reference with g++ and the ap_types of hls4ml.
#ifndef SPARSE_XNOR_MVAU_HPP
#define SPARSE_XNOR_MVAU_HPP

#include <ap_int.h>
#include <hls_stream.h>

// Bits needed for the unsigned value x (0 for x = 0).
constexpr unsigned sxm_bitlen(unsigned x) { return x == 0 ? 0 : 1 + sxm_bitlen(x >> 1); }
// ap_uint<0> does not exist: an index over n values gets at least one bit.
constexpr unsigned sxm_index_bits(unsigned n) { return n <= 2 ? 1 : sxm_bitlen(n - 1); }

// Compressed mask memory: the non-zero PE x SIMD blocks only.
// block[p][s] bit i = mask bit of input sf[s]*SIMD+i for neuron nf*PE+p, where
// nf is the neuron fold that step s belongs to (steps are grouped by nf).
template<unsigned SIMD, unsigned PE, unsigned NSTEPS, unsigned SF>
struct SparseMaskMemory {
  ap_uint<SIMD> block[PE][NSTEPS];
  ap_uint<sxm_index_bits(SF)> sf[NSTEPS];
  ap_uint<1> last[NSTEPS];
};

// Thresholded layer: one output bit per neuron. T is clipped to the reachable
// accumulator range by the generator, so it fits the AW-bit accumulator.
template<unsigned PE, unsigned NF, unsigned RW, unsigned AW>
struct SparseThresholds {
  static unsigned const OW = 1;
  typedef ap_uint<1> TO;
  ap_int<RW> r[PE][NF];
  ap_int<AW> t[PE][NF];
  ap_uint<1> inv[PE][NF];

  TO activate(unsigned nf, unsigned pe, ap_int<AW> const &acc) const {
#pragma HLS INLINE
    // inv encodes a negative batch-norm gain: (acc <= t) == !(acc >= t + 1).
    return ap_uint<1>(acc >= t[pe][nf]) ^ inv[pe][nf];
  }
};

// Layer without activation (classifier): the signed value of equation (*).
// c holds the per-neuron constant 2**K*c_j + R_j*MW.
template<unsigned PE, unsigned NF, unsigned RW, unsigned AW, unsigned OW_, unsigned CCW>
struct SparseNoActivation {
  static unsigned const OW = OW_;
  typedef ap_int<OW_> TO;
  ap_int<RW> r[PE][NF];
  ap_int<CCW> c[PE][NF];

  TO activate(unsigned nf, unsigned pe, ap_int<AW> const &acc) const {
#pragma HLS INLINE
    // The result is known to fit OW bits, so truncating the full-precision
    // difference to OW bits (two's complement wrap) is exact.
    return TO((ap_int<AW + 1>(acc) << 1) - c[pe][nf]);
  }
};

// Number of set bits; the running sum never exceeds N, so CW bits suffice.
template<unsigned CW, int N>  // int: ap_uint's own parameter type, so N is deducible
ap_uint<CW> sxm_popcount(ap_uint<N> const &x) {
#pragma HLS INLINE
  ap_uint<CW> c = 0;
  for (int i = 0; i < N; i++) {
#pragma HLS UNROLL
    c += x[i];
  }
  return c;
}

// One whole input vector plus its popcount P, handed from the receiver to the
// compute stage. The sparse schedule visits SIMD folds out of arrival order
// (and skips some), so compute needs the complete vector before it starts.
template<unsigned SF, unsigned SIMD, unsigned CW>
struct SparseInputVector {
  ap_uint<SIMD> beat[SF];
  ap_uint<CW> pop;
};

// Receiver: collects SF beats and counts P while they arrive, so the shared
// term R_j * P costs no extra pass over the vector.
template<unsigned MW, unsigned SIMD>
void SparseXnorMVAU_collect(hls::stream<ap_uint<SIMD>> &in,
                            hls::stream<SparseInputVector<MW / SIMD, SIMD, sxm_bitlen(MW)>> &vec,
                            unsigned const numReps) {
  unsigned const SF = MW / SIMD;
  unsigned const CW = sxm_bitlen(MW);
  ap_uint<SIMD> buf[SF];
#pragma HLS ARRAY_PARTITION variable=buf complete dim=1
  ap_uint<CW> pop = 0;
  unsigned sf = 0;
  for (unsigned i = 0; i < numReps * SF; i++) {
#pragma HLS PIPELINE II=1
    ap_uint<SIMD> const beat = in.read();
    ap_uint<CW> const npop = pop + sxm_popcount<CW>(beat);
    buf[sf] = beat;
    if (++sf == SF) {
      SparseInputVector<SF, SIMD, CW> v;
      for (unsigned j = 0; j < SF; j++) {
#pragma HLS UNROLL
        v.beat[j] = buf[j];
      }
      v.pop = npop;
      vec.write(v);
      sf = 0;
      pop = 0;
    } else {
      pop = npop;
    }
  }
}

// Compute: one stored block per cycle. Every PE lane accumulates
// S = popc(a & b) over the blocks of its neuron fold; only at the fold's last
// block is the shared term added and the activation applied, so the
// per-neuron multiply R_j * P runs once per output, not once per block.
template<unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned K, unsigned NSTEPS,
         unsigned AW, typename TParams>
void SparseXnorMVAU_compute(hls::stream<SparseInputVector<MW / SIMD, SIMD, sxm_bitlen(MW)>> &vec,
                            hls::stream<ap_uint<PE * TParams::OW>> &out,
                            SparseMaskMemory<SIMD, PE, NSTEPS, MW / SIMD> const &weights,
                            TParams const &params, unsigned const numReps) {
  unsigned const SF = MW / SIMD;
  unsigned const CW = sxm_bitlen(MW);
  unsigned const OW = TParams::OW;

  // The vector is reused by all NF neuron folds (as finn-hlslib's inputBuf):
  // fully partitioned so any SIMD fold can be selected in the cycle it is needed.
  ap_uint<SIMD> inputBuf[SF];
#pragma HLS ARRAY_PARTITION variable=inputBuf complete dim=1
  ap_uint<CW> pop = 0;
  ap_uint<CW> s[PE];
#pragma HLS ARRAY_PARTITION variable=s complete dim=1
  for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
    s[pe] = 0;
  }

  unsigned step = 0;
  unsigned nf = 0;
  bool fresh = true;  // this step opens a neuron fold: start S from zero
  // One flat loop over all steps of all vectors (like finn-hlslib's MVAU) so
  // the pipeline never drains between neuron folds or vectors.
  for (unsigned i = 0; i < numReps * NSTEPS; i++) {
#pragma HLS PIPELINE II=1
    if (step == 0) {
      SparseInputVector<SF, SIMD, CW> const v = vec.read();
      for (unsigned sf = 0; sf < SF; sf++) {
#pragma HLS UNROLL
        inputBuf[sf] = v.beat[sf];
      }
      pop = v.pop;
    }
    ap_uint<SIMD> const a = inputBuf[weights.sf[step]];
    bool const last = weights.last[step];
    ap_uint<PE * OW> outElem = 0;
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
      ap_uint<CW> const sp = (fresh ? ap_uint<CW>(0) : s[pe]) + sxm_popcount<CW>(ap_uint<SIMD>(a & weights.block[pe][step]));
      s[pe] = sp;
      if (last) {
        // Both terms fit AW bits on their own (config.acc_width covers MW << K
        // and R*MW), so the AW-bit wrapped sum is the exact accumulator.
        ap_int<AW> const sk = ap_int<AW>(sp) << K;
        ap_int<AW> const rp = params.r[pe][nf] * pop;
        ap_int<AW> const acc = sk + rp;
        typename TParams::TO const o = params.activate(nf, pe, acc);
        outElem((pe + 1) * OW - 1, pe * OW) = ap_uint<OW>(o.range(OW - 1, 0));
      }
    }
    fresh = last;
    if (last) {
      out.write(outElem);
      nf++;
    }
    if (++step == NSTEPS) {
      step = 0;
      nf = 0;
    }
  }
}

// numReps vectors in, numReps*NF beats out. DATAFLOW overlaps receiving
// vector n+1 with computing vector n (the depth-2 channel is the double
// buffer the RTL has), so throughput is one vector per max(SF, NSTEPS) cycles.
template<unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned K, unsigned NSTEPS,
         unsigned AW, typename TParams>
void SparseXnorMVAU(hls::stream<ap_uint<SIMD>> &in,
                    hls::stream<ap_uint<PE * TParams::OW>> &out,
                    SparseMaskMemory<SIMD, PE, NSTEPS, MW / SIMD> const &weights,
                    TParams const &params, unsigned const numReps) {
  static_assert(MW % SIMD == 0, "SIMD must divide MW");
  static_assert(MH % PE == 0, "PE must divide MH");
  static_assert(NSTEPS >= MH / PE, "every neuron fold needs at least one step");
  static_assert(NSTEPS <= (MH / PE) * (MW / SIMD), "more steps than PE x SIMD blocks");
#pragma HLS DATAFLOW
  hls::stream<SparseInputVector<MW / SIMD, SIMD, sxm_bitlen(MW)>> vec("sparse_mvau_vec");
#pragma HLS STREAM variable=vec depth=2
  SparseXnorMVAU_collect<MW, SIMD>(in, vec, numReps);
  SparseXnorMVAU_compute<MW, MH, SIMD, PE, K, NSTEPS, AW, TParams>(vec, out, weights, params, numReps);
}

#endif  // SPARSE_XNOR_MVAU_HPP
