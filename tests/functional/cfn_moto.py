"""What moto's CloudFormation cannot model, and a template with those resources left out.

moto 5.2.5 has no CloudFormation model for these four types; references to them become marked
placeholders so the rest of the template deploys and can be checked.
"""
import re

NOT_IN_MOTO = {"AWS::ApiGatewayV2::Api", "AWS::CodeBuild::Project", "AWS::SNS::Subscription",
               "AWS::SecretsManager::Secret"}


def unmodelled(tpl):
    """Drop resource types moto cannot model, and point references to them at marked placeholders."""
    gone = {n for n, r in tpl["Resources"].items() if r["Type"] in NOT_IN_MOTO}

    def scrub(node):
        if isinstance(node, dict):
            if node.get("Ref") in gone:
                return f"unmodelled-{node['Ref']}"
            if "Fn::GetAtt" in node and node["Fn::GetAtt"][0] in gone:
                return f"arn:aws:unmodelled:::{node['Fn::GetAtt'][0]}"
            return {k: scrub(v) for k, v in node.items()}
        if isinstance(node, list):
            return [scrub(v) for v in node]
        if isinstance(node, str):
            for name in gone:
                node = re.sub(r"\$\{" + name + r"(\.\w+)?\}", f"unmodelled-{name}", node)
        return node

    tpl["Resources"] = {n: scrub(r) for n, r in tpl["Resources"].items() if n not in gone}
    tpl["Outputs"] = {n: scrub(o) for n, o in tpl["Outputs"].items()}
    return tpl, gone


def refresh_stacks_after_change_sets(monkeypatch):
    """moto 5.2.5's ChangeSet.apply updates the resources but not the stack's outputs or
    parameters, which CloudFormation itself does; patch the fake (not our code) to do the same."""
    from moto.cloudformation.models import ChangeSet

    original = ChangeSet.apply

    def apply(self):
        original(self)
        self.stack.parameters = self.parameters
        self.stack.template, self.stack.template_dict = self.template, self.template_dict
        self.stack.output_map = self.stack._create_output_map()

    monkeypatch.setattr(ChangeSet, "apply", apply)
