/*
 * gdn_train.c - `gdn train` and `gdn generate`: a byte-level language model
 * trained from text files through the public API (model, loss, optimizer,
 * checkpoints, prefill/decode and sampling), the library's main job.
 *
 * Data: every regular file under --data (default /usr/share/common-licenses)
 * read in name order and concatenated; bytes are tokens (vocab 256). The
 * last 10% is held out for validation. Batch b of step s starts at offsets
 * drawn from a generator seeded by (seed, s), so a resumed run sees the
 * same batches as an uninterrupted one.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gdn.h"
#include "gdn_cmds.h"

/* ---------------------------------------------------------------- data */

struct corpus {
    unsigned char *b;
    size_t         n, cap;
    int            files;
};

static int add_file(struct corpus *c, const char *path)
{
    FILE  *f = fopen(path, "rb");
    size_t r;
    if (!f)
        return -1;
    for (;;) {
        if (c->cap - c->n < 65536) {
            size_t         cap = c->cap ? 2 * c->cap : 1 << 20;
            unsigned char *b   = realloc(c->b, cap);
            if (!b) {
                fclose(f);
                return -1;
            }
            c->b   = b;
            c->cap = cap;
        }
        r = fread(c->b + c->n, 1, c->cap - c->n, f);
        c->n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    c->files++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files under path (recursively, sorted by name; symlinks are
 * followed as stat does, depth limited to 8). */
static int add_path(struct corpus *c, const char *path, int depth)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    if (S_ISREG(sb.st_mode))
        return add_file(c, path);
    if (!S_ISDIR(sb.st_mode) || depth > 8)
        return 0;
    {
        DIR           *d = opendir(path);
        struct dirent *e;
        char         **names = NULL;
        size_t         n = 0, cap = 0;
        int            rc = 0;
        if (!d)
            return -1;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            if (n == cap) {
                char **nn = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names));
                if (!nn)
                    break;
                names = nn;
            }
            names[n] = malloc(strlen(path) + strlen(e->d_name) + 2);
            if (!names[n])
                break;
            sprintf(names[n++], "%s/%s", path, e->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
            if (add_path(c, names[i], depth + 1) != 0)
                rc = -1;
            free(names[i]);
        }
        free(names);
        return rc;
    }
}

static double unigram_bits(const unsigned char *b, size_t n)
{
    double cnt[256] = {0}, h = 0;
    for (size_t i = 0; i < n; i++)
        cnt[b[i]]++;
    for (int i = 0; i < 256; i++)
        if (cnt[i] > 0)
            h -= cnt[i] / (double)n * log2(cnt[i] / (double)n);
    return h;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---------------------------------------------------------------- options */

struct train_opts {
    const char *data, *out, *preset, *prompt;
    int         steps, seq, batch, accum, warmup, eval_every, save_every, gen, resume, top_k;
    double      lr, wd, clip, temperature, top_p;
    uint64_t    seed;
};

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int fail(gdn_context *ctx, const char *what, gdn_status st)
{
    fprintf(stderr, "gdn train: %s: %s%s%s\n", what, gdn_status_string(st), ctx ? ": " : "",
            ctx ? gdn_context_last_error(ctx) : "");
    return 1;
}

#define CK(what, expr)                                                                             \
    do {                                                                                           \
        gdn_status st_ = (expr);                                                                   \
        if (st_) {                                                                                 \
            rc = fail(ctx, what, st_);                                                             \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(double s, char *buf, size_t cap)
{
    if (!(s >= 0) || s > 360000)
        snprintf(buf, cap, "--:--");
    else
        snprintf(buf, cap, "%d:%02d", (int)s / 60, (int)s % 60);
}

/* Mean cross-entropy (nats per token) of `n` windows of the validation
 * bytes: fixed, evenly spaced windows of seq + 1 bytes. */
static gdn_status eval_loss(gdn_model *m, gdn_context *ctx, const unsigned char *v, size_t vn,
                            int seq, int batch, int windows, double *out)
{
    int32_t                 *ids = malloc((size_t)batch * (size_t)seq * sizeof(int32_t));
    int32_t                 *tg  = malloc((size_t)batch * (size_t)seq * sizeof(int32_t));
    gdn_tensor              *tid = NULL, *ttg = NULL, *lg = NULL, *loss = NULL;
    gdn_cross_entropy_params cp;
    gdn_cross_entropy_out    co;
    gdn_model_batch          b;
    gdn_status               st = GDN_STATUS_OK;
    double                   sum = 0;
    int                      done = 0;
    int64_t                  sh[2] = {batch, seq};
    if (!ids || !tg || vn < (size_t)seq + 2) {
        free(ids);
        free(tg);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    gdn_cross_entropy_params_init(&cp);
    memset(&co, 0, sizeof(co));
    memset(&b, 0, sizeof(b));
    if (!(st = gdn_tensor_create(ctx, GDN_DTYPE_I32, 2, sh, &tid)) &&
        !(st = gdn_tensor_create(ctx, GDN_DTYPE_I32, 2, sh, &ttg)) &&
        !(st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, (const int64_t[]){batch, seq, 256}, &lg)))
        st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, (const int64_t[]){1}, &loss);
    co.loss = loss;
    b.ids   = tid;
    for (int w0 = 0; !st && w0 < windows; w0 += batch) {
        float l;
        for (int i = 0; i < batch; i++) {
            size_t start = (size_t)((double)((w0 + i) % windows) / windows * (double)(vn - seq - 1));
            for (int t = 0; t < seq; t++) {
                ids[i * seq + t] = v[start + t];
                tg[i * seq + t]  = v[start + t + 1];
            }
        }
        if ((st = gdn_tensor_write(tid, ids, 0, (size_t)batch * seq * 4)) ||
            (st = gdn_tensor_write(ttg, tg, 0, (size_t)batch * seq * 4)) ||
            (st = gdn_model_forward(m, &b, lg, NULL)) ||
            (st = gdn_cross_entropy_forward(ctx, &cp, lg, ttg, &co)) ||
            (st = gdn_tensor_read(loss, &l, 0, sizeof(l))))
            break;
        sum += l;
        done++;
    }
    *out = done ? sum / done : NAN;
    gdn_tensor_destroy(tid);
    gdn_tensor_destroy(ttg);
    gdn_tensor_destroy(lg);
    gdn_tensor_destroy(loss);
    free(ids);
    free(tg);
    return st;
}

/* Generate n bytes after the prompt and print them (non-printable bytes as
 * '.'). */
static gdn_status generate(gdn_model *m, gdn_context *ctx, const char *prompt, int n,
                           const gdn_sampler_params *sp, uint64_t seed, FILE *out)
{
    size_t           len = strlen(prompt);
    int32_t         *ids = malloc((len ? len : 1) * sizeof(int32_t));
    gdn_model_state *s   = NULL;
    gdn_tensor      *tid = NULL, *lg = NULL, *one = NULL;
    gdn_model_batch  b;
    gdn_status       st;
    float            logits[256];
    uint64_t         rng = seed;
    if (!ids)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    if (!len) { /* an empty prompt starts from a newline */
        prompt = "\n";
        len    = 1;
    }
    for (size_t i = 0; i < len; i++)
        ids[i] = (unsigned char)prompt[i];
    memset(&b, 0, sizeof(b));
    st = gdn_model_state_create(m, 1, &s);
    if (!st)
        st = gdn_tensor_create(ctx, GDN_DTYPE_I32, 1, (const int64_t[]){(int64_t)len}, &tid);
    if (!st)
        st = gdn_tensor_create(ctx, GDN_DTYPE_I32, 1, (const int64_t[]){1}, &one);
    if (!st)
        st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, (const int64_t[]){1, 256}, &lg);
    if (!st)
        st = gdn_tensor_write(tid, ids, 0, len * sizeof(int32_t));
    b.ids = tid;
    if (!st)
        st = gdn_model_prefill(m, s, &b, lg);
    fputs(prompt, out);
    for (int i = 0; !st && i < n; i++) {
        int32_t tok;
        if ((st = gdn_tensor_read(lg, logits, 0, sizeof(logits))) ||
            (st = gdn_sample(logits, 256, sp, &rng, &tok)))
            break;
        fputc(tok == '\n' || tok == '\t' || (tok >= 32 && tok < 127) ? tok : '.', out);
        if ((st = gdn_tensor_write(one, &tok, 0, sizeof(tok))) ||
            (st = gdn_model_decode(m, s, one, lg)))
            break;
    }
    fputc('\n', out);
    gdn_tensor_destroy(tid);
    gdn_tensor_destroy(one);
    gdn_tensor_destroy(lg);
    gdn_model_state_destroy(s);
    free(ids);
    return st;
}

static int parse_train(int argc, char **argv, struct train_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->data        = "/usr/share/common-licenses";
    o->out         = "gdn-train.safetensors";
    o->preset      = "small-h1";
    o->prompt      = "The GNU General Public License ";
    o->steps       = 250;
    o->seq         = 128;
    o->batch       = 8;
    o->accum       = 1;
    o->warmup      = 20;
    o->eval_every  = 50;
    o->save_every  = 0;
    o->gen         = 200;
    o->lr          = 2e-3;
    o->wd          = 0.1;
    o->clip        = 1.0;
    o->temperature = 0.8;
    o->top_p       = 0.95;
    o->seed        = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT_S(name, field)                                                                         \
    if (!strcmp(a, name) && v) {                                                                   \
        o->field = v;                                                                              \
        i++;                                                                                       \
        continue;                                                                                  \
    }
#define OPT_I(name, field)                                                                         \
    if (!strcmp(a, name) && v) {                                                                   \
        o->field = atoi(v);                                                                        \
        i++;                                                                                       \
        continue;                                                                                  \
    }
#define OPT_D(name, field)                                                                         \
    if (!strcmp(a, name) && v) {                                                                   \
        o->field = atof(v);                                                                        \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        OPT_S("--data", data)
        OPT_S("--out", out)
        OPT_S("--preset", preset)
        OPT_S("--prompt", prompt)
        OPT_I("--steps", steps)
        OPT_I("--seq", seq)
        OPT_I("--batch", batch)
        OPT_I("--accum", accum)
        OPT_I("--warmup", warmup)
        OPT_I("--eval-every", eval_every)
        OPT_I("--save-every", save_every)
        OPT_I("--gen", gen)
        OPT_I("--top-k", top_k)
        OPT_D("--lr", lr)
        OPT_D("--wd", wd)
        OPT_D("--clip", clip)
        OPT_D("--temperature", temperature)
        OPT_D("--top-p", top_p)
        if (!strcmp(a, "--seed") && v) {
            o->seed = strtoull(v, NULL, 10);
            i++;
            continue;
        }
        if (!strcmp(a, "--resume")) {
            o->resume = 1;
            continue;
        }
        fprintf(stderr, "gdn train: unknown or incomplete option '%s'\n", a);
        return -1;
    }
    if (o->steps < 1 || o->seq < 2 || o->batch < 1 || o->accum < 1 || o->warmup < 0 ||
        o->eval_every < 0 || o->save_every < 0 || o->gen < 0) {
        fprintf(stderr, "gdn train: steps, seq, batch, accum must be positive\n");
        return -1;
    }
    return 0;
#undef OPT_S
#undef OPT_I
#undef OPT_D
}

static gdn_status save_ckpt(gdn_model *m, const struct train_opts *o, int step)
{
    char        sstep[32], sseed[32];
    const char *meta[] = {"train.step", sstep, "train.seed", sseed, "train.data", o->data};
    snprintf(sstep, sizeof(sstep), "%d", step);
    snprintf(sseed, sizeof(sseed), "%llu", (unsigned long long)o->seed);
    return gdn_model_save(m, o->out, GDN_MODEL_SAVE_OPTIMIZER, meta, 3);
}

int gdn_cmd_train(int argc, char **argv)
{
    struct train_opts        o;
    struct corpus            c = {0};
    gdn_context_params       cp;
    gdn_context             *ctx = NULL;
    gdn_model               *m   = NULL;
    gdn_model_config         cfg;
    gdn_adamw_params         ap;
    gdn_tensor              *tid = NULL, *ttg = NULL, *lg = NULL, *loss = NULL;
    gdn_cross_entropy_params cep;
    gdn_cross_entropy_out    ceo;
    gdn_model_batch          b;
    gdn_device_info          di;
    int32_t                 *ids = NULL, *tg = NULL;
    size_t                   ntrain, nval;
    double                   h_unigram, t0, t_last, t_eval = 0, val = NAN, ema = NAN;
    int                      t_step;
    int                      rc = 0, step0 = 0, tty = isatty(1);
    if (parse_train(argc, argv, &o))
        return 2;
    if (add_path(&c, o.data, 0) != 0 && c.n == 0) {
        fprintf(stderr, "gdn train: cannot read %s: %s\n", o.data, strerror(errno));
        return 1;
    }
    if (c.n < (size_t)(o.seq + 2) * 20) {
        fprintf(stderr, "gdn train: %s holds %zu bytes; need at least %d\n", o.data, c.n,
                (o.seq + 2) * 20);
        free(c.b);
        return 1;
    }
    nval      = c.n / 10;
    ntrain    = c.n - nval;
    h_unigram = unigram_bits(c.b, ntrain);
    gdn_context_params_init(&cp);
    CK("context", gdn_context_create(&cp, &ctx));
    CK("device", gdn_context_device_info(ctx, &di));
    if (o.resume) {
        char buf[64];
        CK("resume: load", gdn_model_load(ctx, o.out, &m));
        CK("resume: train.step", gdn_checkpoint_meta(o.out, "train.step", buf, sizeof(buf)));
        step0 = atoi(buf);
        /* the batches of a step depend on the seed: keep the run's */
        CK("resume: train.seed", gdn_checkpoint_meta(o.out, "train.seed", buf, sizeof(buf)));
        o.seed = strtoull(buf, NULL, 10);
    } else {
        if (gdn_model_config_preset(o.preset, &cfg)) {
            fprintf(stderr, "gdn train: unknown preset '%s'\n", o.preset);
            rc = 2;
            goto done;
        }
        cfg.vocab = 256;
        CK("model", gdn_model_create(ctx, &cfg, o.seed, &m));
    }
    gdn_model_get_config(m, &cfg);
    if (cfg.vocab != 256) {
        fprintf(stderr, "gdn train: byte-level training needs vocab 256 (model has %d)\n",
                cfg.vocab);
        rc = 1;
        goto done;
    }
    printf("gdn train: %s on %s (%s)\n", o.resume ? "resuming" : o.preset, di.name,
           di.platform_name);
    printf("  data     %s: %d files, %zu bytes (%zu train, %zu validation)\n", o.data, c.files, c.n,
           ntrain, nval);
    printf("  model    layers \"%s\", D = %d, %lld parameters\n", cfg.layers, cfg.d_model,
           (long long)gdn_model_param_count(m));
    printf("  training %d steps of %d x %d tokens (x%d accumulated), lr %g, seed %llu\n", o.steps,
           o.batch, o.seq, o.accum, o.lr, (unsigned long long)o.seed);
    printf("  unigram entropy of the training bytes: %.3f bits per byte\n", h_unigram);
    fflush(stdout);

    gdn_adamw_params_init(&ap);
    ap.lr           = (float)o.lr;
    ap.weight_decay = (float)o.wd;
    ap.clip_norm    = (float)o.clip;
    ap.warmup_steps = o.warmup;
    ap.total_steps  = o.steps;
    ap.accum_steps  = o.accum;
    gdn_cross_entropy_params_init(&cep);
    memset(&ceo, 0, sizeof(ceo));
    memset(&b, 0, sizeof(b));
    ids = malloc((size_t)o.batch * o.seq * sizeof(int32_t));
    tg  = malloc((size_t)o.batch * o.seq * sizeof(int32_t));
    if (!ids || !tg) {
        rc = fail(ctx, "memory", GDN_STATUS_OUT_OF_HOST_MEMORY);
        goto done;
    }
    CK("tensors", gdn_tensor_create(ctx, GDN_DTYPE_I32, 2, (const int64_t[]){o.batch, o.seq}, &tid));
    CK("tensors", gdn_tensor_create(ctx, GDN_DTYPE_I32, 2, (const int64_t[]){o.batch, o.seq}, &ttg));
    CK("tensors",
       gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, (const int64_t[]){o.batch, o.seq, 256}, &lg));
    CK("tensors", gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, (const int64_t[]){1}, &loss));
    ceo.loss = loss;
    b.ids    = tid;
    signal(SIGINT, on_sigint);
    t0     = now_s();
    t_last = t0;
    t_step = step0;
    for (int step = step0; step < o.steps; step++) {
        gdn_step_report rep;
        double          sum = 0, el, left;
        char            tl[16];
        if (g_stop) {
            printf("\ngdn train: interrupted at step %d; saving %s\n", step, o.out);
            CK("save", save_ckpt(m, &o, step));
            rc = 130;
            goto done;
        }
        CK("zero_grad", gdn_model_zero_grad(m));
        for (int a = 0; a < o.accum; a++) {
            uint64_t        r = mix64(o.seed * 0x9e3779b97f4a7c15ull + (uint64_t)step * 131 + (uint64_t)a);
            gdn_model_tape *tape = NULL;
            float           l;
            for (int i = 0; i < o.batch; i++) {
                size_t start;
                r     = mix64(r + 0x632be59bd9b4e019ull);
                start = (size_t)(r % (ntrain - (size_t)o.seq - 1));
                for (int t = 0; t < o.seq; t++) {
                    ids[i * o.seq + t] = c.b[start + t];
                    tg[i * o.seq + t]  = c.b[start + t + 1];
                }
            }
            CK("batch", gdn_tensor_write(tid, ids, 0, (size_t)o.batch * o.seq * 4));
            CK("batch", gdn_tensor_write(ttg, tg, 0, (size_t)o.batch * o.seq * 4));
            CK("forward", gdn_model_forward(m, &b, lg, &tape));
            CK("loss", gdn_cross_entropy_forward(ctx, &cep, lg, ttg, &ceo));
            CK("loss backward", gdn_cross_entropy_backward(ctx, &cep, lg, ttg, NULL, NULL, lg));
            {
                gdn_status st = gdn_model_backward(m, tape, lg);
                gdn_model_tape_destroy(tape);
                CK("backward", st);
            }
            CK("loss read", gdn_tensor_read(loss, &l, 0, sizeof(l)));
            sum += l;
        }
        CK("optimizer", gdn_model_optimizer_step(m, &ap, &rep));
        sum /= o.accum;
        ema = isnan(ema) ? sum : 0.9 * ema + 0.1 * sum;
        el   = now_s() - t0;
        left = el / (step - step0 + 1) * (o.steps - step - 1);
        fmt_time(left, tl, sizeof(tl));
        if (tty || (step + 1) % 10 == 0 || step + 1 == o.steps) {
            /* tokens/s since the previous line (the first steps include
             * kernel compilation; evaluations are not counted) */
            double now = now_s(), rate = (step + 1 - t_step) * (double)o.batch * o.seq * o.accum /
                                         (now - t_last - t_eval);
            printf("%sstep %5d/%d  loss %.4f  bpb %.3f  |g| %.2f  lr %.2e  %.0f tok/s  left %s%s",
                   tty ? "\r" : "", step + 1, o.steps, sum, ema / log(2.0), rep.grad_norm, rep.lr,
                   rate, tl, tty ? "   " : "\n");
            t_last = now;
            t_step = step + 1;
            t_eval = 0;
        }
        fflush(stdout);
        if ((o.eval_every && (step + 1) % o.eval_every == 0) || step + 1 == o.steps) {
            double te = now_s();
            CK("validation", eval_loss(m, ctx, c.b + ntrain, nval, o.seq, o.batch, 64, &val));
            t_eval += now_s() - te;
            printf("%s  validation: loss %.4f nats, %.3f bits per byte (unigram entropy %.3f)\n",
                   tty ? "\n" : "", val, val / log(2.0), h_unigram);
        }
        if (o.save_every && (step + 1) % o.save_every == 0)
            CK("save", save_ckpt(m, &o, step + 1));
    }
    CK("save", save_ckpt(m, &o, o.steps));
    printf("gdn train: %d steps in %.1f s; checkpoint %s\n", o.steps - step0, now_s() - t0, o.out);
    printf("gdn train: validation %.3f bits per byte vs unigram entropy %.3f bits per byte%s\n",
           val / log(2.0), h_unigram,
           val / log(2.0) < h_unigram ? "" : "  (NOT below: training did not learn)");
    if (o.gen > 0) {
        gdn_sampler_params sp;
        gdn_sampler_params_init(&sp);
        sp.temperature = (float)o.temperature;
        sp.top_k       = o.top_k;
        sp.top_p       = (float)o.top_p;
        printf("gdn train: sample (temperature %.2f, top-p %.2f):\n---\n", o.temperature, o.top_p);
        CK("generate", generate(m, ctx, o.prompt, o.gen, &sp, o.seed, stdout));
        printf("---\n");
    }
    if (!(val / log(2.0) < h_unigram))
        rc = 3;
done:
    gdn_tensor_destroy(tid);
    gdn_tensor_destroy(ttg);
    gdn_tensor_destroy(lg);
    gdn_tensor_destroy(loss);
    gdn_model_destroy(m);
    gdn_context_destroy(ctx);
    free(ids);
    free(tg);
    free(c.b);
    return rc;
}

int gdn_cmd_generate(int argc, char **argv)
{
    const char        *model = "gdn-train.safetensors", *prompt = "";
    int                n     = 200, rc = 0;
    uint64_t           seed  = 1;
    gdn_sampler_params sp;
    gdn_context_params cp;
    gdn_context       *ctx = NULL;
    gdn_model         *m   = NULL;
    gdn_model_config   cfg;
    gdn_sampler_params_init(&sp);
    sp.temperature = 0.8f;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "gdn generate: option '%s' needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--prompt"))
            prompt = v;
        else if (!strcmp(a, "--tokens"))
            n = atoi(v);
        else if (!strcmp(a, "--temperature"))
            sp.temperature = (float)atof(v);
        else if (!strcmp(a, "--top-k"))
            sp.top_k = atoi(v);
        else if (!strcmp(a, "--top-p"))
            sp.top_p = (float)atof(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "gdn generate: unknown option '%s'\n", a);
            return 2;
        }
        i++;
    }
    gdn_context_params_init(&cp);
    CK("context", gdn_context_create(&cp, &ctx));
    CK("load", gdn_model_load(ctx, model, &m));
    gdn_model_get_config(m, &cfg);
    if (cfg.vocab != 256) {
        fprintf(stderr, "gdn generate: only byte-level models (vocab 256) have a tokenizer here\n");
        rc = 1;
        goto done;
    }
    CK("generate", generate(m, ctx, prompt, n, &sp, seed, stdout));
done:
    gdn_model_destroy(m);
    gdn_context_destroy(ctx);
    return rc;
}
