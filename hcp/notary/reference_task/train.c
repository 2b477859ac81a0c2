/*
 * hcp reference training task (ML-Chain v6 "train.wasm").
 *
 * L2-regularised logistic regression trained by mini-batch SGD on the Breast Cancer
 * Wisconsin (Diagnostic) data set, scored by accuracy on a held-out test split.
 *
 * Inputs, from the working directory the notary preopens (tried as "./" and "/work/"):
 *   dataset.csv           scikit-learn's breast_cancer.csv layout: a header line
 *                         "<n_samples>,<n_features>,<class names...>", then one row per sample,
 *                         n_features numbers followed by the integer class (0 or 1).
 *   hyperparameters.json  optional flat JSON object of numbers; keys: learning_rate, epochs,
 *                         l2, batch_size, seed, lr_decay. Unknown keys or out-of-range
 *                         values are refused (exit 2), so a typo never trains with defaults.
 * Output: "final score: <test accuracy>" as the last line on stdout.
 *
 * Deterministic bit for bit: the split uses a fixed seed that no miner controls (so nobody
 * can shop for an easy test set), shuffling uses splitmix64 seeded by "seed", and all
 * arithmetic is IEEE double in WebAssembly (libm is compiled into the module).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FEATURES 64
#define MAX_SAMPLES 100000
#define MAX_FILE (16 * 1024 * 1024)
#define SPLIT_SEED 0x5EED2024ULL
#define TEST_FRACTION_DEN 5 /* one sample in five is held out */

typedef struct {
    double learning_rate, l2, lr_decay;
    long epochs, batch_size;
    uint64_t seed;
} Hyper;

static void die(const char *what) {
    fprintf(stderr, "train.wasm: %s\n", what);
    exit(2);
}

static char *read_input(const char *name, int required) {
    static const char *dirs[] = {"", "./", "/work/"};
    char path[256];
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        snprintf(path, sizeof path, "%s%s", dirs[i], name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char *buf = malloc(MAX_FILE + 1);
        if (!buf) die("out of memory reading input");
        size_t n = fread(buf, 1, MAX_FILE + 1, f);
        fclose(f);
        if (n > MAX_FILE) die("input file too large");
        buf[n] = '\0';
        return buf;
    }
    if (required) die("cannot open dataset.csv");
    return NULL;
}

/* splitmix64: tiny, well-mixed, and identical on every platform. */
static uint64_t next_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void shuffle(long *idx, long n, uint64_t *state) {
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(next_u64(state) % (uint64_t)(i + 1));
        long t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* A flat JSON object of numbers, strictly: anything else is an error. */
static void parse_hyper(const char *text, Hyper *h) {
    const char *p = skip_ws(text);
    if (*p++ != '{') die("hyperparameters.json: expected an object");
    p = skip_ws(p);
    if (*p == '}') return;
    for (;;) {
        char key[32];
        size_t k = 0;
        if (*p++ != '"') die("hyperparameters.json: expected a key");
        while (*p && *p != '"') {
            if (*p == '\\' || k + 1 >= sizeof key) die("hyperparameters.json: bad key");
            key[k++] = *p++;
        }
        key[k] = '\0';
        if (*p++ != '"') die("hyperparameters.json: unterminated key");
        p = skip_ws(p);
        if (*p++ != ':') die("hyperparameters.json: expected ':'");
        p = skip_ws(p);
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v)) die("hyperparameters.json: values must be numbers");
        p = skip_ws(end);
        if (!strcmp(key, "learning_rate")) {
            if (!(v > 0 && v <= 10)) die("learning_rate must be in (0, 10]");
            h->learning_rate = v;
        } else if (!strcmp(key, "l2")) {
            if (!(v >= 0 && v <= 1)) die("l2 must be in [0, 1]");
            h->l2 = v;
        } else if (!strcmp(key, "lr_decay")) {
            if (!(v >= 0 && v <= 10)) die("lr_decay must be in [0, 10]");
            h->lr_decay = v;
        } else if (!strcmp(key, "epochs")) {
            if (v != floor(v) || v < 1 || v > 1000) die("epochs must be an integer in [1, 1000]");
            h->epochs = (long)v;
        } else if (!strcmp(key, "batch_size")) {
            if (v != floor(v) || v < 1 || v > 4096) die("batch_size must be an integer in [1, 4096]");
            h->batch_size = (long)v;
        } else if (!strcmp(key, "seed")) {
            if (v != floor(v) || v < 0 || v > 9007199254740991.0) die("seed must be a non-negative integer");
            h->seed = (uint64_t)v;
        } else {
            die("hyperparameters.json: unknown key");
        }
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p++ != '}') die("hyperparameters.json: expected ',' or '}'");
        if (*skip_ws(p) != '\0') die("hyperparameters.json: trailing data");
        return;
    }
}

static double sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

static double accuracy(const double *x, const int *y, const long *rows, long n, long d,
                       const double *w, double b) {
    long correct = 0;
    for (long r = 0; r < n; r++) {
        const double *xi = x + rows[r] * d;
        double z = b;
        for (long j = 0; j < d; j++) z += w[j] * xi[j];
        correct += ((z >= 0) == (y[rows[r]] == 1));
    }
    return n ? (double)correct / (double)n : 0.0;
}

int main(void) {
    Hyper h = {.learning_rate = 0.1, .l2 = 0.001, .lr_decay = 0.0, .epochs = 50, .batch_size = 16,
               .seed = 42};
    char *hp = read_input("hyperparameters.json", 0);
    if (hp) {
        parse_hyper(hp, &h);
        free(hp);
    }

    char *csv = read_input("dataset.csv", 1);
    char *p = csv, *end;
    long n = strtol(p, &end, 10);
    if (end == p || *end != ',') die("dataset.csv: bad header");
    p = end + 1;
    long d = strtol(p, &end, 10);
    if (end == p || n < 10 || n > MAX_SAMPLES || d < 1 || d > MAX_FEATURES)
        die("dataset.csv: bad header sizes");
    p = strchr(end, '\n');
    if (!p) die("dataset.csv: no rows");

    double *x = malloc(sizeof(double) * (size_t)(n * d));
    int *y = malloc(sizeof(int) * (size_t)n);
    long *idx = malloc(sizeof(long) * (size_t)n);
    if (!x || !y || !idx) die("out of memory");
    for (long i = 0; i < n; i++) {
        for (long j = 0; j <= d; j++) {
            p = (char *)skip_ws(p);
            double v = strtod(p, &end);
            if (end == p || !isfinite(v)) die("dataset.csv: bad number");
            if (j < d) {
                x[i * d + j] = v;
            } else {
                if (v != 0 && v != 1) die("dataset.csv: class must be 0 or 1");
                y[i] = (int)v;
            }
            p = end;
            if (j < d && *p++ != ',') die("dataset.csv: expected ','");
        }
        idx[i] = i;
    }
    free(csv);

    uint64_t split_state = SPLIT_SEED;
    shuffle(idx, n, &split_state);
    long n_test = n / TEST_FRACTION_DEN, n_train = n - n_test;
    long *test = idx, *train = idx + n_test;

    /* Standardise with training statistics only: the test set must not leak into training. */
    double mean[MAX_FEATURES], sd[MAX_FEATURES];
    for (long j = 0; j < d; j++) {
        double s = 0, ss = 0;
        for (long r = 0; r < n_train; r++) s += x[train[r] * d + j];
        mean[j] = s / (double)n_train;
        for (long r = 0; r < n_train; r++) {
            double t = x[train[r] * d + j] - mean[j];
            ss += t * t;
        }
        sd[j] = sqrt(ss / (double)n_train);
        if (sd[j] == 0) sd[j] = 1;
    }
    for (long i = 0; i < n; i++)
        for (long j = 0; j < d; j++) x[i * d + j] = (x[i * d + j] - mean[j]) / sd[j];

    double w[MAX_FEATURES] = {0}, grad[MAX_FEATURES], b = 0;
    uint64_t state = h.seed;
    long bs = h.batch_size < n_train ? h.batch_size : n_train;
    for (long epoch = 0; epoch < h.epochs; epoch++) {
        double lr = h.learning_rate / (1.0 + h.lr_decay * (double)epoch);
        shuffle(train, n_train, &state);
        for (long start = 0; start < n_train; start += bs) {
            long stop = start + bs < n_train ? start + bs : n_train;
            double gb = 0;
            memset(grad, 0, sizeof grad);
            for (long r = start; r < stop; r++) {
                const double *xi = x + train[r] * d;
                double z = b;
                for (long j = 0; j < d; j++) z += w[j] * xi[j];
                double err = sigmoid(z) - (double)y[train[r]];
                for (long j = 0; j < d; j++) grad[j] += err * xi[j];
                gb += err;
            }
            double m = (double)(stop - start);
            for (long j = 0; j < d; j++) w[j] -= lr * (grad[j] / m + h.l2 * w[j]);
            b -= lr * gb / m;
        }
    }

    printf("train accuracy: %.6f\n", accuracy(x, y, train, n_train, d, w, b));
    printf("final score: %.6f\n", accuracy(x, y, test, n_test, d, w, b));
    return 0;
}
