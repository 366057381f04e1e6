# Every executed notebook as an HTML page of the report (the notebooks' own rules are in their stages' files).


rule notebook_html:
    input:
        f"{RESULTS}/{{model}}/{{notebook}}.ipynb",
    output:
        report(
            f"{RESULTS}/{{model}}/{{notebook}}.html",
            caption="../report/notebook.rst",
            category="{model}",
            subcategory="Notebooks",
            labels={"model": "{model}", "notebook": "{notebook}"},
        ),
    log:
        f"{LOGS}/notebook_html/{{model}}_{{notebook}}.log",
    benchmark:
        f"{BENCH}/notebook_html/{{model}}_{{notebook}}.tsv"
    localrule: True
    params:
        cmd=script_cmd("notebook_html.py"),
    shell:
        "{params.cmd} {input:q} {output:q} --log {log:q}"
