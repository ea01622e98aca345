/* main.c: billingctl's entry point: global options and the command table.
 * Each command group lives in its own cmd_<group>.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ledgerline/log.h"

typedef struct {
    const char *group;
    const char *verb;
    cli_cmd_fn fn;
    const char *usage;
} cli_command;

static const cli_command commands[] = {
    {"db", "migrate", cmd_db_migrate, "db migrate"},
};

static int usage(void)
{
    fprintf(stderr, "usage: billingctl [--json] COMMAND ...\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "  billingctl %s\n", commands[i].usage);
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    cli_opts o = {0};
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else if (strcmp(argv[i], "--help") == 0)
            return usage(), CLI_OK;
        else
            return usage();
    }
    if (log_init("billingctl") != 0) {
        fprintf(stderr, "billingctl: configuration error: LOG_LEVEL must be one of debug, "
                        "info, warn, error\n");
        return CLI_USAGE;
    }
    if (argc - i < 2)
        return usage();
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        if (strcmp(argv[i], commands[c].group) == 0 && strcmp(argv[i + 1], commands[c].verb) == 0)
            return commands[c].fn(argc - i - 1, argv + i + 1, &o);
    }
    fprintf(stderr, "billingctl: unknown command '%s %s'\n", argv[i], argv[i + 1]);
    return usage();
}
