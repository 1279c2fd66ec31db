/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl completion bash`: a bash completion script generated from the
 * command table and the resource type table, so it always lists exactly the
 * verbs, flags and type arguments this binary understands. */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

/* "path") echo "<subcommands>" ;; and the same for non-command words. */
static void words_case(struct km_buf *subs, struct km_buf *args, const struct ctl_cmd *cmd,
		       const char *path)
{
	km_buf_printf(subs, "\t\"%s\") echo \"", path);
	bool first = true;
	if (cmd->subs)
		for (const struct ctl_cmd *s = cmd->subs; s->name; s++) {
			km_buf_printf(subs, "%s%s", first ? "" : " ", s->name);
			first = false;
		}
	km_buf_puts(subs, "\" ;;\n");
	bool get = (cmd->opts & CTL_CMD_TYPE_ARG) != 0, del = strcmp(cmd->name, "delete") == 0;
	if (!get && !del)
		return;
	km_buf_printf(args, "\t\"%s\") echo \"", path);
	first = true;
	for (size_t i = 0; i < km_rtypes_len; i++) {
		const struct km_rtype *t = &km_rtypes[i];
		if (!t->kumactl_arg || (del && km_rtype_has(t, KM_RT_READ_ONLY)))
			continue;
		if (get)
			km_buf_printf(args, "%s%s %s", first ? "" : " ", t->kumactl_plural,
				      t->kumactl_arg);
		else
			km_buf_printf(args, "%s%s", first ? "" : " ", t->kumactl_arg);
		first = false;
	}
	km_buf_puts(args, "\" ;;\n");
}

static void flags_of(struct km_buf *b, const struct ctl_flag_def *defs)
{
	if (!defs)
		return;
	for (const struct ctl_flag_def *d = defs; d->name; d++) {
		km_buf_printf(b, " --%s", d->name);
		if (d->shorthand)
			km_buf_printf(b, " -%c", d->shorthand);
	}
}

/* Walks the tree; <inherited> holds the flags of every ancestor. */
static void walk(struct km_buf *words, struct km_buf *args, struct km_buf *flags,
		 const struct ctl_cmd *cmd, const char *path, const char *inherited)
{
	words_case(words, args, cmd, path);
	struct km_buf own = KM_BUF_INIT;
	km_buf_puts(&own, inherited);
	flags_of(&own, cmd->flags);
	km_buf_printf(flags, "\t\"%s\") echo \"%s\" ;;\n", path, km_buf_cstr(&own));
	if (cmd->subs)
		for (const struct ctl_cmd *s = cmd->subs; s->name; s++) {
			struct km_buf p = KM_BUF_INIT;
			km_buf_printf(&p, "%s %s", path, s->name);
			walk(words, args, flags, s, km_buf_cstr(&p), km_buf_cstr(&own));
			km_buf_fini(&p);
		}
	km_buf_fini(&own);
}

/* The bash script (also what zsh runs through bashcompinit). */
static void bash_script(struct km_buf *out)
{
	struct km_buf words = KM_BUF_INIT, args = KM_BUF_INIT, flags = KM_BUF_INIT;
	walk(&words, &args, &flags, &ctl_main_root, "kumactl", "");
	km_buf_puts(out, "_kumactl_words()\n{\n\tcase \"$1\" in\n");
	km_buf_puts(out, km_buf_cstr(&words));
	km_buf_puts(out, "\tesac\n}\n\n_kumactl_args()\n{\n\tcase \"$1\" in\n");
	km_buf_puts(out, km_buf_cstr(&args));
	km_buf_puts(out, "\tesac\n}\n\n_kumactl_flags()\n{\n\tcase \"$1\" in\n");
	km_buf_puts(out, km_buf_cstr(&flags));
	km_buf_puts(
		out,
		"\tesac\n}\n\n"
		"_kumactl()\n{\n"
		"\tlocal cur prev cmdpath i w\n"
		"\tcur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
		"\tprev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
		"\tcmdpath=\"kumactl\"\n"
		"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
		"\t\tw=\"${COMP_WORDS[i]}\"\n"
		"\t\tcase \"$w\" in -*) continue ;; esac\n"
		"\t\tcase \" $(_kumactl_words \"$cmdpath\") \" in\n"
		"\t\t*\" $w \"*) cmdpath=\"$cmdpath $w\" ;;\n"
		"\t\tesac\n"
		"\tdone\n"
		"\tcase \"$prev\" in\n"
		"\t-o | --output)\n"
		"\t\tCOMPREPLY=($(compgen -W \"table yaml json\" -- \"$cur\"))\n"
		"\t\treturn ;;\n"
		"\t--log-level)\n"
		"\t\tCOMPREPLY=($(compgen -W \"off info debug\" -- \"$cur\"))\n"
		"\t\treturn ;;\n"
		"\t-f | --format)\n"
		"\t\tif [[ \"$cmdpath\" == \"kumactl export\" ]]; then\n"
		"\t\t\tCOMPREPLY=($(compgen -W \"universal kubernetes\" -- \"$cur\"))\n"
		"\t\t\treturn\n"
		"\t\telif [[ \"$prev\" == --format ]]; then\n"
		"\t\t\tCOMPREPLY=($(compgen -W \"pem-base64 pem\" -- \"$cur\"))\n"
		"\t\t\treturn\n"
		"\t\tfi\n"
		"\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
		"\t\treturn ;;\n"
		"\t-p | --profile)\n"
		"\t\tCOMPREPLY=($(compgen -W \"all federation federation-with-policies no-dataplanes\" -- \"$cur\"))\n"
		"\t\treturn ;;\n"
		"\t--file | --config-file | --ca-cert-file | --client-cert-file | "
		"--client-key-file | --signing-key-path)\n"
		"\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
		"\t\treturn ;;\n"
		"\tesac\n"
		"\tif [[ \"$cur\" == -* ]]; then\n"
		"\t\tCOMPREPLY=($(compgen -W \"$(_kumactl_flags \"$cmdpath\")\" -- \"$cur\"))\n"
		"\telse\n"
		"\t\tCOMPREPLY=($(compgen -W \"$(_kumactl_words \"$cmdpath\") $(_kumactl_args \"$cmdpath\")\" -- \"$cur\"))\n"
		"\tfi\n"
		"}\n\n"
		"complete -o default -F _kumactl kumactl\n");
	km_buf_fini(&words);
	km_buf_fini(&args);
	km_buf_fini(&flags);
}

int ctl_completion_bash_run(struct ctl_ctx *c)
{
	(void)c;
	struct km_buf out = KM_BUF_INIT;
	km_buf_puts(&out, "# bash completion for kumactl\n\n");
	bash_script(&out);
	int rc = ctl_args_out(&out);
	km_buf_fini(&out);
	return rc;
}

/* zsh: the same completion through zsh's bash compatibility (bashcompinit),
 * loaded with `source <(kumactl completion zsh)` or saved as _kumactl on
 * $fpath. */
int ctl_completion_zsh_run(struct ctl_ctx *c)
{
	(void)c;
	struct km_buf out = KM_BUF_INIT;
	km_buf_puts(&out, "#compdef kumactl\n# zsh completion for kumactl (bash completion through bashcompinit)\n\n"
			  "autoload -U +X compinit && compinit -u\nautoload -U +X bashcompinit && bashcompinit\n\n");
	bash_script(&out);
	int rc = ctl_args_out(&out);
	km_buf_fini(&out);
	return rc;
}
