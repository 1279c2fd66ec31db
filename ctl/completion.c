/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl completion bash|zsh|fish`: completion scripts generated from the
 * command table and the resource type table, so they always list exactly the
 * verbs, flags and type arguments this binary understands. Each script holds
 * three tables keyed by the command path ("kumactl get"): its subcommands,
 * its type arguments and its flags (the ancestors' included), and a function
 * that finds the path among the words typed. */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

/* A table's entry in the script's language: "path") echo "..." ;; in bash,
 * case 'path' / echo '...' in fish (no quote in a path or word). */
struct syntax {
	const char *open, *close;
};
static const struct syntax BASH = {"\t\"%s\") echo \"", "\" ;;\n"};
static const struct syntax FISH = {"\t\tcase '%s'\n\t\t\techo '", "'\n"};

/* The subcommands of <cmd>, and its type arguments (get, delete). */
static void words_case(const struct syntax *sx, struct km_buf *subs, struct km_buf *args,
		       const struct ctl_cmd *cmd, const char *path)
{
	km_buf_printf(subs, sx->open, path);
	bool first = true;
	if (cmd->subs)
		for (const struct ctl_cmd *s = cmd->subs; s->name; s++) {
			km_buf_printf(subs, "%s%s", first ? "" : " ", s->name);
			first = false;
		}
	km_buf_puts(subs, sx->close);
	bool get = (cmd->opts & CTL_CMD_TYPE_ARG) != 0, del = strcmp(cmd->name, "delete") == 0;
	if (!get && !del)
		return;
	km_buf_printf(args, sx->open, path);
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
	km_buf_puts(args, sx->close);
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

/* Adds the flags of <defs> that take a value (the word after them is not a
 * command word) to <vf>, " --a -a --b " (each once). */
static void value_flags(struct km_buf *vf, const struct ctl_flag_def *defs)
{
	for (const struct ctl_flag_def *d = defs; d && d->name; d++) {
		if (d->kind == CTL_FLAG_BOOL)
			continue;
		char w[80];
		snprintf(w, sizeof(w), " --%s ", d->name);
		if (!vf->len)
			km_buf_putc(vf, ' ');
		if (!strstr(km_buf_cstr(vf), w))
			km_buf_puts(vf, w + 1);
		snprintf(w, sizeof(w), " -%c ", d->shorthand);
		if (d->shorthand && !strstr(km_buf_cstr(vf), w))
			km_buf_puts(vf, w + 1);
	}
}

/* Walks the tree; <inherited> holds the flags of every ancestor. */
static void walk(const struct syntax *sx, struct km_buf *words, struct km_buf *args, struct km_buf *flags,
		 struct km_buf *vflags, const struct ctl_cmd *cmd, const char *path, const char *inherited)
{
	words_case(sx, words, args, cmd, path);
	value_flags(vflags, cmd->flags);
	struct km_buf own = KM_BUF_INIT;
	km_buf_puts(&own, inherited);
	flags_of(&own, cmd->flags);
	km_buf_printf(flags, sx->open, path);
	km_buf_puts(flags, km_buf_cstr(&own) + (own.len && own.data[0] == ' '));
	km_buf_puts(flags, sx->close);
	if (cmd->subs)
		for (const struct ctl_cmd *s = cmd->subs; s->name; s++) {
			struct km_buf p = KM_BUF_INIT;
			km_buf_printf(&p, "%s %s", path, s->name);
			walk(sx, words, args, flags, vflags, s, km_buf_cstr(&p), km_buf_cstr(&own));
			km_buf_fini(&p);
		}
	km_buf_fini(&own);
}

/* The bash script (also what zsh runs through bashcompinit). */
static void bash_script(struct km_buf *out)
{
	struct km_buf words = KM_BUF_INIT, args = KM_BUF_INIT, flags = KM_BUF_INIT, vflags = KM_BUF_INIT;
	walk(&BASH, &words, &args, &flags, &vflags, &ctl_main_root, "kumactl", "");
	km_buf_puts(out, "_kumactl_words()\n{\n\tcase \"$1\" in\n");
	km_buf_puts(out, km_buf_cstr(&words));
	km_buf_puts(out, "\tesac\n}\n\n_kumactl_args()\n{\n\tcase \"$1\" in\n");
	km_buf_puts(out, km_buf_cstr(&args));
	km_buf_puts(out, "\tesac\n}\n\n_kumactl_flags()\n{\n\tcase \"$1\" in\n");
	km_buf_puts(out, km_buf_cstr(&flags));
	km_buf_puts(out, "\tesac\n}\n\n_kumactl_value_flags()\n{\n\techo \"");
	km_buf_puts(out, km_buf_cstr(&vflags));
	km_buf_puts(out, "\"\n");
	km_buf_puts(
		out,
		"}\n\n"
		"_kumactl()\n{\n"
		"\tlocal cur prev cmdpath i w pos=0\n"
		"\tcur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
		"\tprev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
		"\tcmdpath=\"kumactl\"\n"
		"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
		"\t\tw=\"${COMP_WORDS[i]}\"\n"
		"\t\tcase \"$w\" in\n"
		"\t\t--*=*) continue ;;\n"
		"\t\t-*) [[ \"$(_kumactl_value_flags)\" == *\" $w \"* ]] && ((i++)); continue ;;\n"
		"\t\tesac\n"
		"\t\tcase \" $(_kumactl_words \"$cmdpath\") \" in\n"
		"\t\t*\" $w \"*) cmdpath=\"$cmdpath $w\" ;;\n"
		"\t\t*) pos=$((pos + 1)) ;;\n"
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
		"\telif ((pos == 0)); then\n"
		"\t\tCOMPREPLY=($(compgen -W \"$(_kumactl_words \"$cmdpath\") $(_kumactl_args \"$cmdpath\")\" -- \"$cur\"))\n"
		"\tfi\n"
		"}\n\n"
		"complete -o default -F _kumactl kumactl\n");
	km_buf_fini(&words);
	km_buf_fini(&args);
	km_buf_fini(&flags);
	km_buf_fini(&vflags);
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

/* fish: the same tables as fish functions; one completion function walks
 * the tokens (`commandline -opc`) as the bash one walks COMP_WORDS. Loaded
 * with `kumactl completion fish | source` or saved as
 * ~/.config/fish/completions/kumactl.fish. */
int ctl_completion_fish_run(struct ctl_ctx *c)
{
	(void)c;
	struct km_buf words = KM_BUF_INIT, args = KM_BUF_INIT, flags = KM_BUF_INIT, vflags = KM_BUF_INIT,
		      out = KM_BUF_INIT;
	walk(&FISH, &words, &args, &flags, &vflags, &ctl_main_root, "kumactl", "");
	km_buf_puts(&out, "# fish completion for kumactl\n\nfunction __kumactl_words\n\tswitch $argv[1]\n");
	km_buf_puts(&out, km_buf_cstr(&words));
	km_buf_puts(&out, "\tend\nend\n\nfunction __kumactl_args\n\tswitch $argv[1]\n");
	km_buf_puts(&out, km_buf_cstr(&args));
	km_buf_puts(&out, "\tend\nend\n\nfunction __kumactl_flags\n\tswitch $argv[1]\n");
	km_buf_puts(&out, km_buf_cstr(&flags));
	km_buf_puts(&out, "\tend\nend\n\nset -g __kumactl_value_flags (string split -n ' ' -- '");
	km_buf_puts(&out, km_buf_cstr(&vflags));
	km_buf_puts(&out, "')\n");
	km_buf_puts(
		&out,
		"\n"
		"function __kumactl_complete\n"
		"\tset -l toks (commandline -opc)\n"
		"\tset -l cur (commandline -ct)\n"
		"\tset -l prev $toks[-1]\n"
		"\tset -l cmdpath kumactl\n"
		"\tset -l pos 0\n"
		"\tset -l skip 0\n"
		"\tfor w in $toks[2..-1]\n"
		"\t\tif test $skip = 1\n"
		"\t\t\tset skip 0\n"
		"\t\t\tcontinue\n"
		"\t\tend\n"
		"\t\tif string match -q -- '-*' $w\n"
		"\t\t\tcontains -- $w $__kumactl_value_flags; and set skip 1\n"
		"\t\t\tcontinue\n"
		"\t\tend\n"
		"\t\tif contains -- $w (string split -n ' ' -- (__kumactl_words \"$cmdpath\"))\n"
		"\t\t\tset cmdpath \"$cmdpath $w\"\n"
		"\t\telse\n"
		"\t\t\tset pos (math $pos + 1)\n"
		"\t\tend\n"
		"\tend\n"
		"\tswitch $prev\n"
		"\t\tcase -o --output\n"
		"\t\t\tprintf '%s\\n' table yaml json\n"
		"\t\t\treturn\n"
		"\t\tcase --log-level\n"
		"\t\t\tprintf '%s\\n' off info debug\n"
		"\t\t\treturn\n"
		"\t\tcase -f --format\n"
		"\t\t\tif test \"$cmdpath\" = 'kumactl export'\n"
		"\t\t\t\tprintf '%s\\n' universal kubernetes\n"
		"\t\t\t\treturn\n"
		"\t\t\telse if test \"$prev\" = --format\n"
		"\t\t\t\tprintf '%s\\n' pem-base64 pem\n"
		"\t\t\t\treturn\n"
		"\t\t\tend\n"
		"\t\t\t__fish_complete_path $cur\n"
		"\t\t\treturn\n"
		"\t\tcase -p --profile\n"
		"\t\t\tprintf '%s\\n' all federation federation-with-policies no-dataplanes\n"
		"\t\t\treturn\n"
		"\t\tcase --file --config-file --ca-cert-file --client-cert-file --client-key-file "
		"--signing-key-path\n"
		"\t\t\t__fish_complete_path $cur\n"
		"\t\t\treturn\n"
		"\tend\n"
		"\tif string match -q -- '-*' $cur\n"
		"\t\tstring split -n ' ' -- (__kumactl_flags \"$cmdpath\")\n"
		"\telse if test $pos = 0\n"
		"\t\tstring split -n ' ' -- (__kumactl_words \"$cmdpath\") (__kumactl_args \"$cmdpath\")\n"
		"\tend\n"
		"end\n\n"
		"complete -c kumactl -f -a '(__kumactl_complete)'\n");
	int rc = ctl_args_out(&out);
	km_buf_fini(&words);
	km_buf_fini(&args);
	km_buf_fini(&flags);
	km_buf_fini(&vflags);
	km_buf_fini(&out);
	return rc;
}
