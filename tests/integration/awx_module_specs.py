"""The argument specs of the awx.awx modules that awx/configure.yml calls, as data.

Transcribed from the awx.awx collection (awx_collection/plugins/modules/*.py, `argument_spec` in main(), AWX
24.x), without the connection options every awx.awx module adds (controller_host, controller_oauthtoken, ...).
awx.awx cannot be installed here (no Ansible Galaxy), so tests/integration/test_awx.py validates awx/controller.yml
against these with ansible-core's own ArgumentSpecValidator: an unknown option, a wrong type or a value outside
its choices fails, as the module itself would fail.
"""

_NOTIFY = {"notification_templates_started": {"type": "list", "elements": "str"},
           "notification_templates_success": {"type": "list", "elements": "str"},
           "notification_templates_error": {"type": "list", "elements": "str"}}

JOB_TEMPLATE = dict({
    "name": {"required": True}, "new_name": {}, "copy_from": {}, "description": {}, "organization": {},
    "job_type": {"choices": ["run", "check"]}, "inventory": {}, "project": {}, "playbook": {}, "credential": {},
    "vault_credential": {}, "credentials": {"type": "list", "elements": "str"}, "execution_environment": {},
    "custom_virtualenv": {}, "instance_groups": {"type": "list", "elements": "str"}, "forks": {"type": "int"},
    "limit": {}, "verbosity": {"type": "int", "choices": [0, 1, 2, 3, 4]}, "extra_vars": {"type": "dict"},
    "job_tags": {}, "force_handlers": {"type": "bool"}, "skip_tags": {}, "start_at_task": {},
    "timeout": {"type": "int"}, "use_fact_cache": {"type": "bool"}, "host_config_key": {"no_log": False},
    "ask_diff_mode_on_launch": {"type": "bool"}, "ask_variables_on_launch": {"type": "bool"},
    "ask_limit_on_launch": {"type": "bool"}, "ask_tags_on_launch": {"type": "bool"},
    "ask_skip_tags_on_launch": {"type": "bool"}, "ask_job_type_on_launch": {"type": "bool"},
    "ask_verbosity_on_launch": {"type": "bool"}, "ask_inventory_on_launch": {"type": "bool"},
    "ask_credential_on_launch": {"type": "bool"}, "ask_execution_environment_on_launch": {"type": "bool"},
    "ask_forks_on_launch": {"type": "bool"}, "ask_instance_groups_on_launch": {"type": "bool"},
    "ask_job_slice_count_on_launch": {"type": "bool"}, "ask_labels_on_launch": {"type": "bool"},
    "ask_timeout_on_launch": {"type": "bool"}, "survey_enabled": {"type": "bool"}, "survey_spec": {"type": "dict"},
    "become_enabled": {"type": "bool"}, "diff_mode": {"type": "bool"}, "allow_simultaneous": {"type": "bool"},
    "scm_branch": {}, "ask_scm_branch_on_launch": {"type": "bool"}, "job_slice_count": {"type": "int"},
    "webhook_service": {"choices": ["github", "gitlab", ""]}, "webhook_credential": {},
    "labels": {"type": "list", "elements": "str"}, "prevent_instance_group_fallback": {"type": "bool"},
    "state": {"choices": ["present", "absent", "exists"], "default": "present"},
}, **_NOTIFY)

WORKFLOW_JOB_TEMPLATE = dict({
    "name": {"required": True}, "new_name": {}, "copy_from": {}, "description": {}, "extra_vars": {"type": "dict"},
    "job_tags": {}, "skip_tags": {}, "organization": {}, "survey_spec": {"type": "dict"},
    "survey_enabled": {"type": "bool"}, "allow_simultaneous": {"type": "bool"},
    "ask_variables_on_launch": {"type": "bool"}, "ask_labels_on_launch": {"type": "bool"},
    "ask_tags_on_launch": {"type": "bool"}, "ask_skip_tags_on_launch": {"type": "bool"}, "inventory": {},
    "limit": {}, "scm_branch": {}, "ask_inventory_on_launch": {"type": "bool"},
    "ask_scm_branch_on_launch": {"type": "bool"}, "ask_limit_on_launch": {"type": "bool"},
    "webhook_service": {"choices": ["github", "gitlab"]}, "webhook_credential": {},
    "labels": {"type": "list", "elements": "str"},
    "notification_templates_approvals": {"type": "list", "elements": "str"},
    "workflow_nodes": {"type": "list", "elements": "dict"}, "destroy_current_nodes": {"type": "bool", "default": False},
    "state": {"choices": ["present", "absent"], "default": "present"},
}, **_NOTIFY)

PROJECT = dict({
    "name": {"required": True}, "new_name": {}, "copy_from": {}, "description": {},
    "scm_type": {"choices": ["manual", "git", "svn", "insights", "archive"], "default": "manual"},
    "scm_url": {}, "local_path": {}, "scm_branch": {}, "scm_refspec": {}, "credential": {},
    "scm_clean": {"type": "bool"}, "scm_delete_on_update": {"type": "bool"}, "scm_track_submodules": {"type": "bool"},
    "scm_update_on_launch": {"type": "bool"}, "scm_update_cache_timeout": {"type": "int"},
    "allow_override": {"type": "bool"}, "timeout": {"type": "int"}, "default_environment": {},
    "custom_virtualenv": {}, "organization": {}, "signature_validation_credential": {},
    "state": {"choices": ["present", "absent", "exists"], "default": "present"}, "wait": {"type": "bool"},
    "update_project": {"type": "bool"}, "interval": {"type": "float"},
}, **_NOTIFY)

EXECUTION_ENVIRONMENT = {
    "name": {"required": True}, "new_name": {}, "image": {"required": True}, "description": {}, "organization": {},
    "credential": {}, "state": {"choices": ["present", "absent", "exists"], "default": "present"},
    "pull": {"choices": ["always", "missing", "never"]},
}

# workflow_nodes elements (the module's documented sub-options; it reads them itself, without a nested spec).
WORKFLOW_NODE_KEYS = {"identifier", "unified_job_template", "related", "extra_data", "inventory", "scm_branch",
                      "job_type", "job_tags", "skip_tags", "limit", "diff_mode", "verbosity",
                      "all_parents_must_converge", "credentials", "execution_environment", "forks", "instance_groups",
                      "job_slice_count", "labels", "timeout", "approval_node", "state"}
WORKFLOW_RELATED_KEYS = {"success_nodes", "failure_nodes", "always_nodes", "credentials", "labels",
                         "instance_groups"}
UNIFIED_JOB_TEMPLATE_TYPES = {"job_template", "workflow_job_template", "project", "inventory_source",
                              "workflow_approval", "system_job_template"}

SPECS = {"awx.awx.job_template": JOB_TEMPLATE, "awx.awx.workflow_job_template": WORKFLOW_JOB_TEMPLATE,
         "awx.awx.project": PROJECT, "awx.awx.execution_environment": EXECUTION_ENVIRONMENT}

# Survey questions as AWX validates them (awx/main/models/mixins.py SurveyJobTemplateMixin).
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
