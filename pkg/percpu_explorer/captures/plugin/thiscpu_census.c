/*
 * thiscpu_census: a QEMU TCG plugin that counts, exactly, how often every this_cpu
 * site of an arm64 kernel runs.
 *
 * A "site" is a kernel instruction that reads the CPU's per-CPU offset:
 *   - `mrs Xt, tpidr_el1` (0xd538d080 | Rt), or `mrs Xt, tpidr_el2` (0xd53cd040 | Rt),
 *     the encoding a VHE kernel patches the same addresses to at boot;
 *   - `bl COPY`, a call into an out-of-line copy of the kernel's per-CPU offset read
 *     (`mrs; ret`), whose addresses come from the `copies=FILE` argument (hex, one a line).
 * Every site gets an inline counter (exact under `-accel tcg,thread=single`, where one
 * host thread runs every vCPU). Every instruction adds one to the kernel or the user
 * total (by the top bit of its address: TTBR1 or TTBR0).
 *
 * Phases: when user code executes the marker word (`marker=0x...`, an unallocated
 * HINT, which the CPU executes as a NOP), the plugin writes a snapshot of the totals
 * and of every non-zero site counter. The guest runs the marker between workloads.
 *
 * The plugin cannot read guest registers or memory, so it keeps the word of every
 * kernel instruction it translated; at exit it writes, for each site, the words from
 * 8 before it to 24 after it that it has seen, and Python classifies the access.
 *
 * Output (`out=FILE`), one record a line:
 *   snap N KERNEL USER          then   c ADDR COUNT   for every site counted so far
 *   site ADDR KIND WORD         KIND: mrs1 (tpidr_el1), mrs2 (tpidr_el2), bl
 *   w ADDR WORD                 the instruction words around the sites
 *   end KERNEL USER
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define KERNEL_BIT (1ULL << 63)
#define WINDOW_BEFORE 8
#define WINDOW_AFTER 24

enum kind { KIND_MRS1, KIND_MRS2, KIND_BL };
static const char *kind_names[] = { "mrs1", "mrs2", "bl" };

struct site {
    uint64_t addr;
    uint64_t count;
    uint32_t word;
    enum kind kind;
};

static uint64_t kernel_insns;
static uint64_t user_insns;
static uint32_t marker_word;
static int snapshots;
static FILE *out;
static GHashTable *sites;   /* addr -> struct site */
static GHashTable *words;   /* addr -> word (kernel instructions translated) */
static GHashTable *copies;  /* addr of out-of-line offset-read copies */

static gint cmp_addr(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static GArray *sorted_sites(void)
{
    GArray *addrs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, sites);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        uint64_t addr = ((struct site *)value)->addr;
        g_array_append_val(addrs, addr);
    }
    g_array_sort(addrs, cmp_addr);
    return addrs;
}

static void write_counts(void)
{
    GArray *addrs = sorted_sites();
    for (guint i = 0; i < addrs->len; i++) {
        uint64_t addr = g_array_index(addrs, uint64_t, i);
        struct site *s = g_hash_table_lookup(sites, &addr);
        if (s->count)
            fprintf(out, "c %" PRIx64 " %" PRIu64 "\n", s->addr, s->count);
    }
    g_array_free(addrs, TRUE);
}

static void on_marker(unsigned int vcpu_index, void *udata)
{
    fprintf(out, "snap %d %" PRIu64 " %" PRIu64 "\n", snapshots++, kernel_insns, user_insns);
    write_counts();
    fflush(out);
}

static struct site *site_for(uint64_t addr, uint32_t word, enum kind kind)
{
    struct site *s = g_hash_table_lookup(sites, &addr);
    if (!s) {
        s = g_new0(struct site, 1);
        s->addr = addr;
        g_hash_table_insert(sites, &s->addr, s);
    }
    s->word = word;  /* a VHE kernel re-patches el1 to el2 at the same address */
    s->kind = kind;
    return s;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        uint32_t word;
        if (qemu_plugin_insn_size(insn) != 4)
            continue;
        memcpy(&word, qemu_plugin_insn_data(insn), 4);
        if (!(pc & KERNEL_BIT)) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       &user_insns, 1);
            if (marker_word && word == marker_word)
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker,
                                                       QEMU_PLUGIN_CB_NO_REGS, NULL);
            continue;
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                   &kernel_insns, 1);
        uint64_t *key = g_new(uint64_t, 1);
        *key = pc;
        g_hash_table_replace(words, key, GUINT_TO_POINTER((guint)word));
        struct site *s = NULL;
        if ((word & 0xffffffe0u) == 0xd538d080u) {
            s = site_for(pc, word, KIND_MRS1);
        } else if ((word & 0xffffffe0u) == 0xd53cd040u) {
            s = site_for(pc, word, KIND_MRS2);
        } else if ((word & 0xfc000000u) == 0x94000000u && g_hash_table_size(copies)) {
            int64_t imm = (int64_t)((uint64_t)(word & 0x03ffffffu) << 38) >> 36;
            uint64_t target = pc + imm;
            if (g_hash_table_contains(copies, &target))
                s = site_for(pc, word, KIND_BL);
        }
        if (s)
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       &s->count, 1);
    }
}

static void write_window(uint64_t addr)
{
    for (int64_t k = -WINDOW_BEFORE; k <= WINDOW_AFTER; k++) {
        uint64_t a = addr + 4 * k;
        gpointer w;
        if (g_hash_table_lookup_extended(words, &a, NULL, &w))
            fprintf(out, "w %" PRIx64 " %08x\n", a, GPOINTER_TO_UINT(w));
    }
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    fprintf(out, "snap %d %" PRIu64 " %" PRIu64 "\n", snapshots++, kernel_insns, user_insns);
    write_counts();
    GArray *addrs = sorted_sites();
    GHashTable *written = g_hash_table_new(g_int64_hash, g_int64_equal);
    for (guint i = 0; i < addrs->len; i++) {
        uint64_t addr = g_array_index(addrs, uint64_t, i);
        struct site *s = g_hash_table_lookup(sites, &addr);
        fprintf(out, "site %" PRIx64 " %s %08x\n", s->addr, kind_names[s->kind], s->word);
        write_window(s->addr);
        /* follow unconditional branches (b) from the window, so accesses behind
         * them are seen too; at most 4 hops */
        uint64_t a = s->addr;
        for (int hop = 0, step = 0; hop < 4 && step < WINDOW_AFTER; step++) {
            gpointer w;
            a += 4;
            if (!g_hash_table_lookup_extended(words, &a, NULL, &w))
                break;
            uint32_t word = GPOINTER_TO_UINT(w);
            if ((word & 0xfc000000u) == 0x14000000u) {
                int64_t imm = (int64_t)((uint64_t)(word & 0x03ffffffu) << 38) >> 36;
                a = a + imm;
                if (!g_hash_table_contains(written, &a)) {
                    uint64_t *key = g_new(uint64_t, 1);
                    *key = a;
                    g_hash_table_add(written, key);
                    write_window(a + 4 * WINDOW_BEFORE);
                }
                a -= 4;
                hop++;
            }
        }
    }
    fprintf(out, "end %" PRIu64 " %" PRIu64 "\n", kernel_insns, user_insns);
    fclose(out);
    g_array_free(addrs, TRUE);
}

static void read_copies(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[128];
    if (!f) {
        fprintf(stderr, "thiscpu_census: cannot read %s\n", path);
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        uint64_t *addr = g_new(uint64_t, 1);
        *addr = strtoull(line, NULL, 16);
        if (*addr)
            g_hash_table_add(copies, addr);
        else
            g_free(addr);
    }
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *path = "census.txt";
    sites = g_hash_table_new(g_int64_hash, g_int64_equal);
    words = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    copies = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "out="))
            path = argv[i] + 4;
        else if (g_str_has_prefix(argv[i], "copies="))
            read_copies(argv[i] + 7);
        else if (g_str_has_prefix(argv[i], "marker="))
            marker_word = (uint32_t)strtoul(argv[i] + 7, NULL, 16);
        else {
            fprintf(stderr, "thiscpu_census: unknown argument %s (out=, copies=, marker=)\n",
                    argv[i]);
            return -1;
        }
    }
    out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "thiscpu_census: cannot write %s\n", path);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
