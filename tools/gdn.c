/*
 * gdn.c - the libgdn command-line program.
 *
 *   gdn info        every OpenCL platform and device, and what libgdn uses
 *   gdn bench       run the benchmark programs (bench/), all or named ops
 *   gdn tune        autotune the gated delta rule for this device, or
 *                   --show what it uses and where the values come from
 *   gdn version     library version
 *
 * Uses only the public API (gdn.h), as an application would.
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gdn.h"
#include "gdn_cmds.h"

static void print_size(const char *label, uint64_t bytes)
{
    if (bytes >= (1ull << 30))
        printf("    %-22s %.1f GiB\n", label, (double)bytes / (double)(1ull << 30));
    else if (bytes >= (1ull << 20))
        printf("    %-22s %.1f MiB\n", label, (double)bytes / (double)(1ull << 20));
    else
        printf("    %-22s %.1f KiB\n", label, (double)bytes / 1024.0);
}

static int cmd_info(void)
{
    int32_t    n = 0, def = -1, i;
    gdn_status st;

    printf("libgdn %s\n", gdn_version_string());
    st = gdn_device_count(&n);
    if (st) {
        fprintf(stderr, "gdn info: %s\n", gdn_status_string(st));
        return 1;
    }
    if (n == 0) {
        printf("no OpenCL device found (is an ICD installed? see README.md)\n");
        return 1;
    }
    st = gdn_device_default(&def);
    if (st)
        printf("GDN_DEVICE='%s' matches no device\n", getenv("GDN_DEVICE") ? getenv("GDN_DEVICE") : "");
    for (i = 0; i < n; i++) {
        gdn_device_info d;
        if (gdn_device_get_info(i, &d) != GDN_STATUS_OK)
            continue;
        printf("\n[%d] %d:%d  %s%s\n", (int)i, (int)d.platform_index, (int)d.device_index, d.name,
               i == def ? "   <- default" : "");
        printf("    %-22s %s\n", "platform", d.platform_name);
        printf("    %-22s %s (0x%04x)\n", "vendor", d.vendor, (unsigned)d.vendor_id);
        printf("    %-22s %s\n", "driver", d.driver_version);
        printf("    %-22s %s; %s\n", "version", d.device_version, d.opencl_c_version);
        printf("    %-22s %s\n", "type",
               (d.flags & GDN_DEVICE_FLAG_GPU) ? "GPU" : (d.flags & GDN_DEVICE_FLAG_CPU) ? "CPU"
                                                                                         : "other");
        printf("    %-22s %u @ %u MHz\n", "compute units", (unsigned)d.compute_units,
               (unsigned)d.clock_mhz);
        print_size("global memory", d.global_mem_bytes);
        print_size("max allocation", d.max_alloc_bytes);
        print_size("local memory", d.local_mem_bytes);
        printf("    %-22s %u\n", "max work-group size", (unsigned)d.max_work_group_size);
        printf("    %-22s %s", "sub-groups", (d.flags & GDN_DEVICE_FLAG_SUBGROUPS) ? "yes" : "no");
        if (d.subgroup_size)
            printf(" (width %u)", (unsigned)d.subgroup_size);
        printf("\n");
        printf("    %-22s %s\n", "fp16", (d.flags & GDN_DEVICE_FLAG_FP16) ? "yes" : "no");
        printf("    %-22s %s\n", "fp64", (d.flags & GDN_DEVICE_FLAG_FP64) ? "yes" : "no");
        if (d.nv_compute_capability)
            printf("    %-22s %u.%u\n", "compute capability", d.nv_compute_capability / 10,
                   d.nv_compute_capability % 10);
        printf("    %-22s %s\n", "libgdn fast paths",
               (d.flags & GDN_DEVICE_FLAG_INLINE_PTX) ? "inline PTX (NVIDIA sm_80+)"
                                                      : "none (portable OpenCL C 1.2)");
    }
    return 0;
}

#ifndef GDN_LIBEXECDIR
#    define GDN_LIBEXECDIR "/usr/local/libexec/gdn"
#endif

/* The benchmark programs: next to this binary in a build tree
 * (<build>/tools/gdn -> <build>/bench/bench_<op>), else installed under
 * GDN_LIBEXECDIR. */
static int bench_path(const char *op, char *out, size_t cap)
{
    char        self[PATH_MAX];
    ssize_t     n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    struct stat st;

    if (n > 0) {
        char *slash;
        self[n] = '\0';
        if ((slash = strrchr(self, '/')) != NULL) {
            *slash = '\0';
            snprintf(out, cap, "%s/../bench/bench_%s", self, op);
            if (stat(out, &st) == 0)
                return 0;
        }
    }
    snprintf(out, cap, "%s/bench_%s", GDN_LIBEXECDIR, op);
    return stat(out, &st) == 0 ? 0 : -1;
}

static int cmd_bench(int argc, char **argv)
{
    static const char *all[] = {"gated_delta", "swa", "mamba2", "layer_ops", "linear", "model"};
    const char        *ops[16];
    char              *pass[32];
    int                nops = 0, npass = 0, i, failed = 0;

    for (i = 0; i < argc && npass < 30 && nops < 16; i++) {
        if (argv[i][0] == '-') {
            /* an option's value follows it unless it is an op name or
             * another option (--window 4096, --out DIR, --quick swa) */
            bool is_op = false;
            int  k;
            pass[npass++] = argv[i];
            for (k = 0; i + 1 < argc && k < (int)(sizeof(all) / sizeof(all[0])); k++)
                is_op |= !strcmp(argv[i + 1], all[k]);
            if (!strchr(argv[i], '=') && i + 1 < argc && argv[i + 1][0] != '-' && !is_op)
                pass[npass++] = argv[++i];
        } else {
            ops[nops++] = argv[i];
        }
    }
    if (nops == 0)
        for (i = 0; i < (int)(sizeof(all) / sizeof(all[0])); i++)
            ops[nops++] = all[i];
    for (i = 0; i < nops; i++) {
        char  path[PATH_MAX + 64];
        char *args[34];
        pid_t pid;
        int   status = 0, j;

        if (bench_path(ops[i], path, sizeof(path)) != 0) {
            fprintf(stderr, "gdn bench: no benchmark program for '%s'\n", ops[i]);
            failed++;
            continue;
        }
        printf("==== %s\n", ops[i]);
        fflush(stdout);
        args[0] = path;
        for (j = 0; j < npass; j++)
            args[j + 1] = pass[j];
        args[npass + 1] = NULL;
        pid             = fork();
        if (pid == 0) {
            execv(path, args);
            perror("gdn bench: exec");
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 77))
            failed++;
    }
    return failed ? 1 : 0;
}

/* gdn tune [--K n] [--V n] [--budget s] [--show] [--verbose] */
static int cmd_tune(int argc, char **argv)
{
    int32_t            K = 128, V = 128;
    const char        *op     = "gated_delta";
    double             budget = 300;
    int                show = 0, verbose = 0, i;
    gdn_context       *ctx  = NULL;
    gdn_context_params cp;
    gdn_status         st;
    char               report[4096];

    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--show"))
            show = 1;
        else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "--K") && i + 1 < argc)
            K = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--V") && i + 1 < argc)
            V = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--budget") && i + 1 < argc)
            budget = atof(argv[++i]);
        else if (!strcmp(argv[i], "--op") && i + 1 < argc)
            op = argv[++i];
        else {
            fprintf(stderr, "usage: gdn tune [--op gated_delta|mamba2|swa] [--K n] [--V n] "
                            "[--budget seconds] [--show] [--verbose]\n"
                            "  (mamba2: --K is the head dim P, --V the state size DS; swa: --K "
                            "is the head dim)\n");
            return 2;
        }
    }
    gdn_context_params_init(&cp);
    if (verbose)
        cp.log_level = GDN_LOG_LEVEL_INFO; /* one progress line per stage, skipped candidates */
    st = gdn_context_create(&cp, &ctx);
    if (st) {
        fprintf(stderr, "gdn tune: %s\n", gdn_status_string(st));
        return 1;
    }
    if (strcmp(op, "gated_delta")) { /* other ops: tune and print the report */
        printf("tuning %s (%d, %d) for %.0f s at most...\n", op, (int)K, (int)V, budget);
        fflush(stdout);
        st = gdn_tune_op(ctx, op, K, V, budget, report, sizeof(report));
        if (st)
            fprintf(stderr, "gdn tune: %s: %s\n", gdn_status_string(st),
                    gdn_context_last_error(ctx));
        else
            fputs(report, stdout);
        gdn_context_destroy(ctx);
        return st ? 1 : 0;
    }
    if (!show) {
        printf("tuning the gated delta rule's forward and backward stages (K = %d, V = %d) for "
               "%.0f s at most...\n",
               (int)K, (int)V, budget);
        fflush(stdout);
        st = gdn_tune_gated_delta(ctx, K, V, budget, report, sizeof(report));
        if (st) {
            fprintf(stderr, "gdn tune: %s: %s\n", gdn_status_string(st),
                    gdn_context_last_error(ctx));
            gdn_context_destroy(ctx);
            return 1;
        }
        printf("%s", report);
    }
    st = gdn_tune_describe(ctx, K, V, report, sizeof(report));
    if (!st)
        printf("in use on this device:\n%s", report);
    gdn_context_destroy(ctx);
    return st ? 1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gdn <command> [options]\n"
               "commands:\n"
               "  info       list OpenCL devices and what libgdn uses from them\n"
               "  bench      [op ...] [--quick] [--out DIR] [--device SEL] [--reps N]\n"
               "             run the benchmarks (ops: gated_delta swa mamba2 layer_ops linear model)\n"
               "  tune       [--K n] [--V n] [--budget s] [--show] [--verbose]\n"
               "             autotune the gated delta rule (forward and backward stages) for this\n"
               "             device, or show the values in use and where they come from\n"
               "  train      [--data PATH] [--preset NAME] [--steps N] [--seq T] [--batch B]\n"
               "             [--accum N] [--lr X] [--warmup N] [--out FILE] [--resume] ...\n"
               "             train a byte-level model on text files (default: the H1 preset\n"
               "             small-h1 on /usr/share/common-licenses), then print a sample\n"
               "  generate   [--model FILE] [--prompt TEXT] [--tokens N] [--temperature X]\n"
               "             [--top-k K] [--top-p P] [--seed S]   sample from a checkpoint\n"
               "  version    print the library version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "info"))
        return cmd_info();
    if (!strcmp(argv[1], "tune"))
        return cmd_tune(argc - 2, argv + 2);
    if (!strcmp(argv[1], "bench"))
        return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(argv[1], "train"))
        return gdn_cmd_train(argc - 2, argv + 2);
    if (!strcmp(argv[1], "generate"))
        return gdn_cmd_generate(argc - 2, argv + 2);
    if (!strcmp(argv[1], "version")) {
        printf("%s\n", gdn_version_string());
        return 0;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "gdn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
