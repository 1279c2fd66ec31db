/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-dp entry point: root flags, then one table of subcommands (run, wait,
 * version) as upstream's cobra tree. Each subcommand owns its arguments. */
#include <stdio.h>
#include <string.h>

#include "dp/dp.h"

extern char **environ;

static int cmd_run(int argc, char **argv, const char *log_level)
{
	return dp_run_main(argc, argv, environ, log_level);
}

static int cmd_wait(int argc, char **argv, const char *log_level)
{
	return dp_wait_main(argc, argv);
}

static int cmd_version(int argc, char **argv, const char *log_level)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "-a") == 0 || strcmp(argv[i], "--detailed") == 0 ||
		    strcmp(argv[i], "--detailed=true") == 0) {
			printf("Product:       %s\nVersion:       %s\nGit Tag:       unknown\n"
			       "Git Commit:    unknown\nBuild Date:    unknown\n",
			       DP_PRODUCT, DP_VERSION);
			return 0;
		}
	printf("%s: %s\n", DP_PRODUCT, DP_VERSION);
	return 0;
}

struct subcommand {
	const char *name;
	const char *summary;
	int (*fn)(int argc, char **argv, const char *log_level);
};

static const struct subcommand commands[] = {
    {"run", "Launch Dataplane (Envoy)", cmd_run},
    {"version", "Print version", cmd_version},
    {"wait", "Waits for data plane proxy to be ready", cmd_wait},
};

static void usage(FILE *out)
{
	fputs("Dataplane manager for Envoy-based Service Mesh.\n\nUsage:\n  kuma-dp [command]\n\n"
	      "Available Commands:\n",
	      out);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fputs("\nFlags:\n  -h, --help               help for kuma-dp\n"
	      "      --log-level string   log level: one of off|info|debug (default \"info\")\n",
	      out);
}

int main(int argc, char **argv)
{
	const char *log_level = NULL;
	int i = 1;
	/* root flags before the subcommand */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strncmp(argv[i], "--log-level=", 12) == 0) {
			log_level = argv[i] + 12;
		} else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
			log_level = argv[++i];
		} else {
			fprintf(stderr, "Error: unknown flag: %s\n", argv[i]);
			usage(stderr);
			return 1;
		}
	}
	if (i >= argc) {
		usage(stdout);
		return 0;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].fn(argc - i - 1, argv + i + 1, log_level);
	fprintf(stderr, "Error: unknown command \"%s\" for \"kuma-dp\"\nRun 'kuma-dp --help' for usage.\n",
		argv[i]);
	return 1;
}
