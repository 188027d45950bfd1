// Generated-model testbench for sbnn sparse MVAU rtlsim (see rtlsim.py).
// One Verilated top with NINST independent node instances i<k>_*; every
// instance streams its own input file and records its own output beats.
// Runtime config (argv[1]): line 1 "max_cycles drain_cycles"; then per
// instance: "in_path out_path n_in_beats n_out_beats backpressure gaps seed
// in_words out_words". Input file: n_in_beats * in_words little-endian uint32.
// Output file: per beat uint64 cycle + out_words uint32.
// Exit code 3 = timeout (max_cycles reached before all outputs arrived).
#include "Vsim_top.h"
#include "verilated.h"
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

struct Inst {
  std::vector<uint32_t> in;
  long n_in = 0, n_out_exp = 0, in_pos = 0, n_out = 0, first_in = -1, first_out = -1;
  int in_words = 1, out_words = 1;
  double p_bp = 0, q_gap = 0;
  bool vhold = false, rdy = true, stalls = true;
  std::mt19937_64 rng;
  std::uniform_real_distribution<double> u{0.0, 1.0};
  FILE* out = nullptr;
  uint32_t obuf[64 * 1024];
  const uint32_t* cur() { return &in[(in_pos < n_in ? in_pos : 0) * in_words]; }
};

template <typename T> static void setp(T& p, const uint32_t* w) {
  p = (T)((uint64_t)w[0] | ((uint64_t)w[1] << 32));
}
template <std::size_t N> static void setp(VlWide<N>& p, const uint32_t* w) {
  for (std::size_t i = 0; i < N; i++) p[i] = w[i];
}
template <typename T> static void getp(const T& p, uint32_t* w) {
  uint64_t v = p;
  w[0] = (uint32_t)v;
  w[1] = (uint32_t)(v >> 32);
}
template <std::size_t N> static void getp(const VlWide<N>& p, uint32_t* w) {
  for (std::size_t i = 0; i < N; i++) w[i] = p[i];
}

// Random stalls draw two numbers per cycle; a stall-free instance (backpressure and gaps
// both 0, the common case) skips the generator: the same beats, cycles and outputs.
#define DRIVE(I)                                                        \
  {                                                                     \
    Inst& s = insts[I];                                                 \
    if (s.stalls) {                                                     \
      if (!s.vhold && s.in_pos < s.n_in) s.vhold = !(s.u(s.rng) < s.q_gap); \
      s.rdy = !(s.u(s.rng) < s.p_bp);                                   \
    } else if (s.in_pos < s.n_in) {                                     \
      s.vhold = true;                                                   \
    }                                                                   \
    setp(top->i##I##_s_axis_tdata, s.cur());                            \
    top->i##I##_s_axis_tvalid = s.vhold;                                \
    top->i##I##_m_axis_tready = s.rdy;                                  \
  }
#define SAMPLE(I)                                                       \
  {                                                                     \
    Inst& s = insts[I];                                                 \
    if (s.vhold && top->i##I##_s_axis_tready) {                         \
      if (s.first_in < 0) s.first_in = cycle;                           \
      s.in_pos++;                                                       \
      s.vhold = false;                                                  \
    }                                                                   \
    if (s.rdy && top->i##I##_m_axis_tvalid) {                           \
      getp(top->i##I##_m_axis_tdata, s.obuf);                           \
      uint64_t c = (uint64_t)cycle;                                     \
      fwrite(&c, sizeof c, 1, s.out);                                   \
      fwrite(s.obuf, 4, s.out_words, s.out);                            \
      if (s.first_out < 0) s.first_out = cycle;                         \
      s.n_out++;                                                        \
    }                                                                   \
  }

int main(int argc, char** argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s runcfg\n", argv[0]); return 2; }
  FILE* cf = fopen(argv[1], "r");
  if (!cf) { fprintf(stderr, "cannot open %s\n", argv[1]); return 2; }
  long max_cycles = 0, drain = 0;
  if (fscanf(cf, "%ld %ld", &max_cycles, &drain) != 2) return 2;
  std::vector<Inst> insts(NINST);
  for (int k = 0; k < NINST; k++) {
    char ip[4096], op[4096];
    unsigned long long seed;
    Inst& s = insts[k];
    if (fscanf(cf, "%4095s %4095s %ld %ld %lf %lf %llu %d %d", ip, op, &s.n_in, &s.n_out_exp, &s.p_bp,
               &s.q_gap, &seed, &s.in_words, &s.out_words) != 9) { fprintf(stderr, "bad runcfg line %d\n", k); return 2; }
    s.rng.seed(seed);
    s.stalls = s.p_bp > 0 || s.q_gap > 0;
    s.in.assign((size_t)(s.n_in + 1) * s.in_words + 2, 0u);
    FILE* f = fopen(ip, "rb");
    if (!f || fread(s.in.data(), 4, (size_t)s.n_in * s.in_words, f) != (size_t)s.n_in * s.in_words) {
      fprintf(stderr, "cannot read %s\n", ip); return 2;
    }
    fclose(f);
    s.out = fopen(op, "wb");
    if (!s.out) { fprintf(stderr, "cannot write %s\n", op); return 2; }
  }
  fclose(cf);

  VerilatedContext ctx;
  Vsim_top* top = new Vsim_top{&ctx};
  top->ap_clk = 0;
  top->ap_rst_n = 0;
  for (int i = 0; i < 4; i++) { top->ap_clk = 0; top->eval(); top->ap_clk = 1; top->eval(); }
  top->ap_clk = 0;
  top->ap_rst_n = 1;
  top->eval();

  auto t0 = std::chrono::steady_clock::now();
  long cycle = 0, done_at = -1;
  int rc = 0;
  while (true) {
    if (done_at < 0) {
      bool all = true;
      for (auto& s : insts) all = all && s.n_out >= s.n_out_exp;
      if (all) done_at = cycle;
    }
    if (done_at >= 0 && cycle >= done_at + drain) break;
    if (done_at < 0 && cycle >= max_cycles) { rc = 3; break; }
    DRIVE_ALL
    top->eval();
    SAMPLE_ALL
    top->ap_clk = 1;
    top->eval();
    top->ap_clk = 0;
    cycle++;
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("cycles %ld done_at %ld wall_s %.6f\n", cycle, done_at, wall);
  for (int k = 0; k < NINST; k++) {
    Inst& s = insts[k];
    printf("inst %d in %ld/%ld out %ld/%ld first_in %ld first_out %ld\n", k, s.in_pos, s.n_in, s.n_out,
           s.n_out_exp, s.first_in, s.first_out);
    fclose(s.out);
  }
  top->final();
  delete top;
  return rc;
}
